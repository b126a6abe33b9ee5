namespace Farm.Dockerfile.Graph;

/// <summary>
/// What a build supplies besides the Dockerfile: <c>--build-arg</c>, <c>--target</c> and platforms.
/// See https://docs.docker.com/reference/dockerfile/#arg and
/// https://docs.docker.com/reference/dockerfile/#automatic-platform-args-in-the-global-scope.
/// </summary>
public sealed record BuildGraphOptions
{
    /// <summary><c>--build-arg</c> values; names are case-sensitive, as in Docker.</summary>
    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The stage to build; null builds the last stage.</summary>
    public string? Target { get; init; }

    /// <summary>The platform the image is built for (TARGETPLATFORM): <c>os/arch[/variant]</c>.</summary>
    public string Platform { get; init; } = "linux/amd64";

    /// <summary>The platform of the builder (BUILDPLATFORM).</summary>
    public string BuildPlatform { get; init; } = "linux/amd64";

    /// <summary>
    /// The config of a base image, when the caller has resolved it (the coordinator pins every FROM
    /// before planning). Arguments: the expanded image reference and the stage platform. Without it,
    /// a base image counts as having no ENV but PATH, no WORKDIR, USER, SHELL or ONBUILD, so
    /// <c>$VAR</c> of a base image ENV expands to nothing.
    /// </summary>
    public Func<string, string, BaseImageConfig?>? ResolveBaseImage { get; init; }

    /// <summary>
    /// Named build contexts that are images (buildx's <c>--build-context NAME=docker-image://REF</c>): a <c>FROM NAME</c>
    /// or <c>COPY --from=NAME</c> that names no earlier stage uses the image REF instead. Names compare as written.
    /// </summary>
    public IReadOnlyDictionary<string, string> NamedImages { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// The build-wide settings of RUN steps (<c>--network</c>, <c>--add-host</c>, <c>--shm-size</c>, <c>--ulimit</c>):
    /// every RUN payload carries them, and so does its cache key. Null: none.
    /// </summary>
    public Contracts.SubmitBuildOptions? RunOptions { get; init; }

    /// <summary>
    /// Named build contexts that are directories (<c>--build-context NAME=DIR</c>): a <c>COPY --from=NAME</c> that names
    /// no earlier stage copies from that context instead of an image. A <c>FROM NAME</c> is refused (FARM1221).
    /// </summary>
    public IReadOnlyCollection<string> NamedDirectories { get; init; } = [];
}

/// <summary>The parts of a base image config that change how later instructions are planned.
/// See https://github.com/opencontainers/image-spec/blob/main/config.md.</summary>
public sealed record BaseImageConfig
{
    /// <summary><c>KEY=value</c> entries, in image order.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    public string? WorkingDir { get; init; }

    public string? User { get; init; }

    public IReadOnlyList<string>? Shell { get; init; }

    /// <summary>ONBUILD triggers of the base image, as stored in its config.</summary>
    public IReadOnlyList<string> OnBuild { get; init; } = [];
}
