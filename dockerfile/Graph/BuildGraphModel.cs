using System.Text.Json.Serialization;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Graph;

/// <summary>What a stage is built on: another stage, an image, or nothing (<c>FROM scratch</c>).
/// See https://docs.docker.com/reference/dockerfile/#from.</summary>
public enum StageBaseKind
{
    [JsonStringEnumMemberName("image")]
    Image,

    [JsonStringEnumMemberName("stage")]
    Stage,

    [JsonStringEnumMemberName("scratch")]
    Scratch,
}

/// <summary>Whether a step makes a filesystem layer (a job for a worker) or only changes the image config.</summary>
public enum StepKind
{
    [JsonStringEnumMemberName("layer")]
    Layer,

    [JsonStringEnumMemberName("config")]
    Config,
}

/// <summary>Where COPY or ADD take their sources.</summary>
public enum CopySourceKind
{
    [JsonStringEnumMemberName("context")]
    Context,

    [JsonStringEnumMemberName("stage")]
    Stage,

    [JsonStringEnumMemberName("image")]
    Image,
}

/// <summary>
/// The Dockerfile as a graph of stages and steps, with every word expanded as Docker does it for the
/// given build args, target and platform. Unreachable stages are kept but marked <see cref="BuildStage.Pruned"/>.
/// </summary>
public sealed record BuildGraph
{
    public required string FileName { get; init; }

    /// <summary>Every stage, in file order; <see cref="BuildStage.Index"/> is the position here.</summary>
    public required IReadOnlyList<BuildStage> Stages { get; init; }

    /// <summary>Index of the stage the build produces.</summary>
    public required int TargetIndex { get; init; }

    /// <summary>The global scope after <c>--build-arg</c>: ARGs before the first FROM plus the platform args.</summary>
    public required IReadOnlyDictionary<string, string> GlobalArgs { get; init; }

    public required IReadOnlyList<BuildWarning> Warnings { get; init; }

    [JsonIgnore]
    public BuildStage Target => Stages[TargetIndex];

    /// <summary>The stages the target needs, in file order (dependencies always come first).</summary>
    [JsonIgnore]
    public IEnumerable<BuildStage> StagesToBuild => Stages.Where(s => !s.Pruned);

    /// <summary>Plans a parsed Dockerfile.</summary>
    /// <exception cref="BuildGraphException">The stages do not form a valid graph, or a word cannot be expanded.</exception>
    public static BuildGraph Create(DockerfileAst ast, BuildGraphOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(ast);
        return new BuildGraphBuilder(ast, options ?? new BuildGraphOptions()).Build();
    }

    /// <summary>Parses and plans a Dockerfile.</summary>
    /// <exception cref="DockerfileSyntaxException">The Dockerfile is malformed.</exception>
    /// <exception cref="BuildGraphException">The stages do not form a valid graph, or a word cannot be expanded.</exception>
    public static BuildGraph Create(string text, string fileName = "Dockerfile", BuildGraphOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Create(DockerfileParser.Parse(text, fileName), options);
    }
}

/// <summary>Something the user should know that does not stop the build.</summary>
public sealed record BuildWarning(string Code, string Message, IReadOnlyList<string> Names, SourceLocation? Location);

/// <summary>One <c>FROM</c> and the instructions up to the next. https://docs.docker.com/build/building/multi-stage/</summary>
public sealed record BuildStage
{
    public required int Index { get; init; }

    /// <summary>The <c>AS</c> name, lower-cased; null when the stage has none.</summary>
    public string? Name { get; init; }

    /// <summary>Location of the FROM line.</summary>
    public required SourceLocation Location { get; init; }

    public required StageBaseKind BaseKind { get; init; }

    /// <summary>The expanded image reference when <see cref="BaseKind"/> is Image (a tag, not yet pinned to a digest).</summary>
    public string? BaseImage { get; init; }

    /// <summary>The stage index when <see cref="BaseKind"/> is Stage.</summary>
    public int? BaseStage { get; init; }

    /// <summary>The platform the stage runs on: its expanded <c>--platform</c>, its base stage's, or the target platform.</summary>
    public required string Platform { get; init; }

    /// <summary>True when the FROM line had <c>--platform</c>.</summary>
    public bool PlatformExplicit { get; init; }

    /// <summary>Global ARGs the FROM line used (for the cache key of the base).</summary>
    public IReadOnlyList<string> UsedArgs { get; init; } = [];

    /// <summary>True when the target does not need this stage: it is not built.</summary>
    public bool Pruned { get; init; }

    /// <summary>Stages this one needs (base stage, <c>COPY --from</c>, <c>RUN --mount=from=</c>), ascending.</summary>
    public IReadOnlyList<int> Dependencies { get; init; } = [];

    /// <summary>Images used by <c>COPY --from=image</c> or <c>RUN --mount=from=image</c>, in order of first use.</summary>
    public IReadOnlyList<string> ImageReferences { get; init; } = [];

    /// <summary>True when <see cref="BuildGraphOptions.ResolveBaseImage"/> gave the base image config.</summary>
    public bool BaseConfigResolved { get; init; }

    /// <summary>
    /// ONBUILD triggers that run before this stage's own steps: those of a base stage, or of a resolved
    /// base image. They are planned as the first <see cref="Steps"/>, at the FROM line.
    /// </summary>
    public IReadOnlyList<string> PendingOnBuild { get; init; } = [];

    public required IReadOnlyList<BuildStep> Steps { get; init; }

    /// <summary>The image config after the last step, base config included.</summary>
    public required StageImageConfig Config { get; init; }
}

/// <summary>
/// One instruction of a stage, expanded. Layer steps become worker jobs; config steps only change
/// <see cref="BuildStage.Config"/> and add an <c>empty_layer</c> history entry.
/// </summary>
public sealed record BuildStep
{
    /// <summary><c>s{stage}/{n}</c>: stage index and the 1-based position of the instruction after FROM.</summary>
    public required string Id { get; init; }

    public required SourceLocation Location { get; init; }

    /// <summary>The instruction keyword, upper-case.</summary>
    public required string Instruction { get; init; }

    public required StepKind Kind { get; init; }

    /// <summary>The instruction after expansion, as it goes into the image history (RUN, CMD, ENTRYPOINT as written).</summary>
    public required string Text { get; init; }

    /// <summary>ARG names whose values this step depends on, sorted: those its words used; for RUN every ARG in scope.</summary>
    public IReadOnlyList<string> UsedArgs { get; init; } = [];

    /// <summary>Why the step is planned the way it is, when that is not obvious.</summary>
    public string? Note { get; init; }

    public required StepPayload Payload { get; init; }
}

/// <summary>What a worker or the config assembler needs to carry out a step.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(RunPayload), "run")]
[JsonDerivedType(typeof(CopyPayload), "copy")]
[JsonDerivedType(typeof(WorkdirPayload), "workdir")]
[JsonDerivedType(typeof(ConfigPayload), "config")]
public abstract record StepPayload;

/// <summary>A heredoc body: a RUN script or an inline COPY/ADD source.</summary>
/// <param name="Name">The heredoc word; the file name for COPY/ADD.</param>
/// <param name="FileDescriptor">The descriptor written before <c>&lt;&lt;</c>, or 0.</param>
/// <param name="Expand">False when the heredoc word was quoted: the body is taken verbatim.</param>
/// <param name="Content">The body after <c>&lt;&lt;-</c> tab stripping and, for COPY/ADD, expansion.</param>
public sealed record InlineFile(string Name, int FileDescriptor, bool Expand, string Content);

/// <summary>RUN. https://docs.docker.com/reference/dockerfile/#run</summary>
public sealed record RunPayload : StepPayload
{
    /// <summary>The argv the container runs: SHELL + command for shell form, the JSON array for exec form.</summary>
    public required IReadOnlyList<string> Argv { get; init; }

    /// <summary><c>KEY=value</c>, sorted by key: the base image ENV, ENV and every ARG in scope (the last set wins).</summary>
    public required IReadOnlyList<string> Env { get; init; }

    /// <summary>Proxy build args (HTTP_PROXY…): given to the process, kept out of history and cache keys.</summary>
    public IReadOnlyList<string> ProxyEnv { get; init; } = [];

    public string? User { get; init; }

    /// <summary>The absolute working directory.</summary>
    public required string Workdir { get; init; }

    /// <summary><c>--network</c>; null for the default.</summary>
    public string? Network { get; init; }

    public string? Security { get; init; }

    /// <summary><c>--mount</c> values as written.</summary>
    public IReadOnlyList<string> Mounts { get; init; } = [];

    /// <summary>Heredoc bodies; a lone script with <c>#!</c> is mounted at <c>/dev/pipes/NAME</c> (see <see cref="Argv"/>).</summary>
    public IReadOnlyList<InlineFile> Files { get; init; } = [];

    /// <summary><c>--add-host</c> entries of the build, <c>HOST:IP</c>.</summary>
    public IReadOnlyList<string> ExtraHosts { get; init; } = [];

    /// <summary><c>--shm-size</c> of the build in bytes; null: the default.</summary>
    public long? ShmSizeBytes { get; init; }

    /// <summary><c>--ulimit</c>s of the build.</summary>
    public IReadOnlyList<Contracts.Ulimit> Ulimits { get; init; } = [];
}

/// <summary>The source of COPY/ADD files: the build context, an earlier stage, or an image.</summary>
/// <param name="Kind">Where the files come from.</param>
/// <param name="Stage">For <see cref="CopySourceKind.Stage"/>: the stage's index.</param>
/// <param name="Image">For <see cref="CopySourceKind.Image"/>: the image reference.</param>
/// <param name="ContextName">For <see cref="CopySourceKind.Context"/>: a named directory context (<c>--build-context NAME=DIR</c>); null: the build's context.</param>
public sealed record CopySource(CopySourceKind Kind, int? Stage = null, string? Image = null, string? ContextName = null);

/// <summary>COPY and ADD. https://docs.docker.com/reference/dockerfile/#copy</summary>
public sealed record CopyPayload : StepPayload
{
    /// <summary>COPY or ADD.</summary>
    public required string Instruction { get; init; }

    public required CopySource From { get; init; }

    /// <summary>Source paths (or URLs for ADD), expanded.</summary>
    public required IReadOnlyList<string> Sources { get; init; }

    /// <summary>The destination as expanded; relative to <see cref="Workdir"/> when not absolute.</summary>
    public required string Destination { get; init; }

    public required string Workdir { get; init; }

    public string? Chown { get; init; }

    public string? Chmod { get; init; }

    public IReadOnlyList<string> Exclude { get; init; } = [];

    public bool Link { get; init; }

    public bool Parents { get; init; }

    /// <summary>ADD <c>--checksum</c>.</summary>
    public string? Checksum { get; init; }

    public bool KeepGitDir { get; init; }

    public bool? Unpack { get; init; }

    /// <summary>Inline files (<c>COPY &lt;&lt;EOF /dest</c>).</summary>
    public IReadOnlyList<InlineFile> InlineFiles { get; init; } = [];
}

/// <summary>WORKDIR. https://docs.docker.com/reference/dockerfile/#workdir</summary>
public sealed record WorkdirPayload : StepPayload
{
    /// <summary>The absolute, cleaned directory.</summary>
    public required string Path { get; init; }

    /// <summary>The USER in force: BuildKit creates the directory as this user.</summary>
    public string? User { get; init; }
}

/// <summary>
/// A config-only step: which config field it sets and the resulting values, e.g.
/// <c>env</c> → <c>["A=1"]</c>, <c>exposedPorts</c> → <c>["80/tcp"]</c>, <c>cmd</c> → argv.
/// </summary>
public sealed record ConfigPayload : StepPayload
{
    public required string Field { get; init; }

    public IReadOnlyList<string> Values { get; init; } = [];
}

/// <summary>HEALTHCHECK as the image config stores it (<c>Test</c> starts with NONE, CMD or CMD-SHELL).
/// https://docs.docker.com/reference/dockerfile/#healthcheck</summary>
public sealed record HealthcheckConfig
{
    public required IReadOnlyList<string> Test { get; init; }

    public TimeSpan? Interval { get; init; }

    public TimeSpan? Timeout { get; init; }

    public TimeSpan? StartPeriod { get; init; }

    public TimeSpan? StartInterval { get; init; }

    public int? Retries { get; init; }
}

/// <summary>The image config fields a Dockerfile sets, as the coordinator writes them.
/// https://github.com/opencontainers/image-spec/blob/main/config.md#properties</summary>
public sealed record StageImageConfig
{
    public IReadOnlyList<string> Env { get; init; } = [];

    public string? WorkingDir { get; init; }

    public string? User { get; init; }

    public IReadOnlyList<string>? Cmd { get; init; }

    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary>Normalized <c>port/proto</c>, sorted.</summary>
    public IReadOnlyList<string> ExposedPorts { get; init; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string> Volumes { get; init; } = [];

    public string? StopSignal { get; init; }

    public HealthcheckConfig? Healthcheck { get; init; }

    /// <summary>Null until SHELL (then <c>["/bin/sh","-c"]</c> applies).</summary>
    public IReadOnlyList<string>? Shell { get; init; }

    public IReadOnlyList<string> OnBuild { get; init; } = [];

    /// <summary>MAINTAINER, which sets the config's author.</summary>
    public string? Author { get; init; }
}
