using Farm.Oci.Images;
using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Coordinator.Grains;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Planning;

namespace Farm.Coordinator.Builds;

/// <summary>
/// One build to run: the fields of a <see cref="SubmitBuild"/> plus what the coordinator already holds for it (the
/// context index, read from the blob store) and where layers live.
/// </summary>
public sealed record BuildRequest
{
    public Guid BuildId { get; init; }

    public required string Dockerfile { get; init; }

    public string DockerfilePath { get; init; } = "Dockerfile";

    /// <summary>Digest of the context tar (an uncompressed tar) in <see cref="CacheStore"/>.</summary>
    public required string ContextDigest { get; init; }

    /// <summary>
    /// The context index the cache keys of COPY and ADD are computed from; null when the submission named none, and
    /// then a step that reads the context fails the build (FARM4203).
    /// </summary>
    public required ContextIndex? ContextIndex { get; init; }

    /// <summary>Where parents are read and layers written, e.g. <c>registry://127.0.0.1:5100/farm/cache</c>; holds the context tar.</summary>
    public required string CacheStore { get; init; }

    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string? Target { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Push the image to every tag.</summary>
    public bool Push { get; init; }

    /// <summary>Skip action-cache lookups (results are still recorded) and never reuse a layer a grain remembers.</summary>
    public bool NoCache { get; init; }

    /// <summary>Export the image besides (or instead of) pushing it.</summary>
    public OutputSpec? Output { get; init; }

    /// <summary>
    /// The config and history time and the latest modification time of new layers' entries (SOURCE_DATE_EPOCH); null
    /// takes the build arg <c>SOURCE_DATE_EPOCH</c>, and without it dates the image by the build (docker's rule).
    /// </summary>
    public DateTimeOffset? Created { get; init; }

    /// <summary>
    /// The local farm's image store: <c>FROM</c> takes images from it before any registry (pulling into it what it
    /// lacks), and the built image is named in it under <see cref="Tags"/>. Null on a cluster: registries only.
    /// </summary>
    public LocalImages? LocalImages { get; init; }

    /// <summary>Pull every base image again (<c>--pull</c>) instead of using the local one.</summary>
    public bool Pull { get; init; }

    /// <summary><c>gzip</c> or <c>zstd</c>.</summary>
    public string Compression { get; init; } = "gzip";

    /// <summary>
    /// The registry credentials of the build's pushes and base-image pulls (its tenant's, or passed with it); null for
    /// the coordinator's own. In memory only: never serialized.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Auth.BuildRegistryAccess? RegistryAccess { get; init; }

    /// <summary>
    /// Mints the job credentials with which a shared farm's workers fetch this build's secrets (null on the local farm,
    /// whose worker reads them in-process, and for a build without secrets). In memory only: never serialized.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Auth.BuildJobSecrets? JobSecrets { get; init; }

    /// <summary>The entitlements the build asked for and the farm granted (<see cref="SubmitBuild.Entitlements"/>).</summary>
    public IReadOnlyList<string> Entitlements { get; init; } = [];

    /// <summary>The build's tenant (<see cref="SubmitBuild.Tenant"/>): its cache mounts are its own.</summary>
    public string? Tenant { get; init; }

    /// <summary>The ids of the secrets passed with the build (<see cref="SubmitBuild.SecretIds"/>); the values stay in <see cref="Auth.BuildSecrets"/>.</summary>
    public IReadOnlyList<string> SecretIds { get; init; } = [];

    /// <summary>
    /// The platforms to build for, normalized (<see cref="Oci.Platform.TryParse"/>), each once: several make an image
    /// index; empty builds linux/amd64 alone (<see cref="SubmitBuild.Platforms"/>).
    /// </summary>
    public IReadOnlyList<string> Platforms { get; init; } = [];

    /// <summary>The ids of the SSH agents passed with the build (<see cref="SubmitBuild.SshIds"/>).</summary>
    public IReadOnlyList<string> SshIds { get; init; } = [];

    /// <summary>The submission's build-wide settings of RUN steps and its named contexts (<see cref="SubmitBuild.Options"/>); null: none.</summary>
    public SubmitBuildOptions? Options { get; init; }

    /// <summary>The graph options of this request: build args, target, named image contexts and RUN settings.</summary>
    public Dockerfile.Graph.BuildGraphOptions GraphOptions() => new()
    {
        BuildArgs = BuildArgs,
        Target = Target,
        RunOptions = Options,
        NamedImages = (Options?.NamedContexts ?? []).Where(c => c.Image is not null || c.StoredImage is not null)
            .ToDictionary(c => c.Name, c => c.Image ?? StoredImageContexts.Reference(c), StringComparer.Ordinal),
        NamedDirectories = [.. (Options?.NamedContexts ?? []).Where(c => c.Image is null && c.StoredImage is null).Select(c => c.Name)],
    };

    /// <summary>The images the client put in the cache store (<see cref="NamedContext.StoredImage"/>), by the reference the graph names them with.</summary>
    public IReadOnlyDictionary<string, NamedContext> StoredImages() =>
        (Options?.NamedContexts ?? []).Where(c => c.StoredImage is not null)
            .GroupBy(StoredImageContexts.Reference, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);

    /// <summary>The named directory contexts (<c>--build-context NAME=DIR</c>) as stored: their tar's digest and their index, by name.</summary>
    public IReadOnlyDictionary<string, NamedContextInput> NamedContexts { get; init; } = new Dictionary<string, NamedContextInput>(StringComparer.Ordinal);

    /// <summary>
    /// Which earlier builds this one is compared with to say why a step ran (<see cref="Explain.BuildLineage"/>); empty
    /// compares with none and records nothing.
    /// </summary>
    public IReadOnlyList<string> Lineages { get; init; } = [];

    /// <summary>A request for a submitted build whose context index was read from the blob store (null when it named none).</summary>
    public static BuildRequest From(SubmitBuild submit, ContextIndex? index, string cacheStore)
    {
        ArgumentNullException.ThrowIfNull(submit);
        return new BuildRequest
        {
            BuildId = submit.BuildId,
            Dockerfile = submit.Dockerfile,
            DockerfilePath = submit.DockerfilePath,
            ContextDigest = submit.ContextDigest,
            ContextIndex = index,
            CacheStore = cacheStore,
            BuildArgs = submit.BuildArgs,
            Labels = submit.Labels,
            Target = submit.Target,
            Tags = submit.Tags,
            Push = submit.Push,
            NoCache = submit.NoCache,
            Pull = submit.Pull,
            Entitlements = submit.Entitlements,
            Tenant = submit.Tenant,
            SecretIds = submit.SecretIds,
            SshIds = submit.SshIds,
            Options = submit.Options,
            Lineages = Explain.BuildLineage.Of(submit),
            Platforms = [.. submit.Platforms.Select(p => Oci.Platform.TryParse(p)?.ToString() ?? p).Distinct(StringComparer.Ordinal)],
        };
    }
}

/// <summary>A named directory context in the cache store: its tar's digest and its verified index.</summary>
public sealed record NamedContextInput(string ContextDigest, ContextIndex Index);

/// <summary>What happened to one layer step.</summary>
/// <param name="StepId">The graph's step id, <c>s{stage}/{n}</c>; in a build for several platforms after the platform, <c>linux/arm64:s1/2</c>.</param>
/// <param name="Display">The instruction as expanded.</param>
/// <param name="CacheKey">The step's cache key.</param>
/// <param name="Cached">True when the action cache answered and no grain was asked.</param>
/// <param name="Layer">The layer, or null when the step changed nothing.</param>
/// <param name="Worker">The worker that built the layer (for a cached step: the one that built it first).</param>
/// <param name="JobId">The job that built it; null when cached.</param>
/// <param name="Started">When the orchestrator started the step.</param>
/// <param name="Finished">When the step's layer was known.</param>
/// <param name="Timings">The worker's phase timings; null when cached.</param>
/// <param name="Platform">The platform the step ran for, <c>os/arch[/variant]</c>; null for linux/amd64.</param>
/// <param name="Emulated">The worker ran it through an emulator (qemu-user-static), not natively.</param>
public sealed record StepOutcome(
    string StepId,
    string Display,
    string CacheKey,
    bool Cached,
    LayerRef? Layer,
    string Worker,
    Guid? JobId,
    DateTimeOffset Started,
    DateTimeOffset Finished,
    JobTimings? Timings,
    string? Platform = null,
    bool Emulated = false)
{
    public TimeSpan Duration => Finished - Started;
}

/// <summary>A finished build: the image and what each layer step did.</summary>
public sealed record BuildResult
{
    public required Guid BuildId { get; init; }

    /// <summary>The manifest digest, <c>sha256:...</c>.</summary>
    public required string ImageDigest { get; init; }

    public required AssembledImage Image { get; init; }

    /// <summary>Every layer step of the stages built, in graph order.</summary>
    public required IReadOnlyList<StepOutcome> Steps { get; init; }

    /// <summary>The references pushed; empty when the image was not pushed.</summary>
    public IReadOnlyList<string> Pushed { get; init; } = [];

    /// <summary>
    /// A build for several platforms: the image index (its digest is <see cref="ImageDigest"/>) and its images, one
    /// per platform; <see cref="Image"/> is then the first platform's. Null for one platform.
    /// </summary>
    public Oci.Images.ImageIndexContent? Index { get; init; }

    public int JobsRun => Steps.Count(s => !s.Cached);
}

/// <summary>Progress of a build, as the CLI and the dashboard show it.</summary>
public abstract record BuildEvent(Guid BuildId, DateTimeOffset At);

public sealed record BuildStarted(Guid BuildId, DateTimeOffset At, int Stages, int LayerSteps) : BuildEvent(BuildId, At);

/// <summary>
/// The build runs again on <paramref name="Silo"/> after the silo running it stopped (run <paramref name="Run"/>):
/// steps already built come from the cache, the others are dispatched again.
/// </summary>
public sealed record BuildResumed(Guid BuildId, DateTimeOffset At, string Silo, int Run) : BuildEvent(BuildId, At);

/// <summary>A base image was pinned to a manifest digest.</summary>
public sealed record BaseImageResolved(Guid BuildId, DateTimeOffset At, string Reference, string Digest) : BuildEvent(BuildId, At);

/// <summary>
/// A layer step started; <paramref name="Explanation"/> says why it runs when the cache did not answer it (null when it
/// did); <paramref name="DependsOn"/> names the layer steps it waited for (the one below it, a <c>COPY --from</c> stage's last).
/// </summary>
public sealed record StepStarted(Guid BuildId, DateTimeOffset At, string StepId, string Display, string CacheKey, StepExplanation? Explanation = null, IReadOnlyList<string>? DependsOn = null) : BuildEvent(BuildId, At);

public sealed record StepFinished(Guid BuildId, DateTimeOffset At, StepOutcome Outcome) : BuildEvent(BuildId, At);

/// <summary>A line a running step printed (only for jobs that run under this build's id).</summary>
public sealed record StepLog(Guid BuildId, DateTimeOffset At, StepLogLine Line) : BuildEvent(BuildId, At);

/// <summary>The build ended with an image: its manifest digest, the references pushed, and its id (the config digest, what <c>--iidfile</c> writes; null from an older coordinator).</summary>
public sealed record BuildFinished(Guid BuildId, DateTimeOffset At, string ImageDigest, IReadOnlyList<string> Pushed, string? ImageId = null) : BuildEvent(BuildId, At);

public sealed record BuildFailed(Guid BuildId, DateTimeOffset At, string Code, string Message) : BuildEvent(BuildId, At);

/// <summary>The local farm packed the context directory in place: its regular files, the tar's size and digest, and how long it took.</summary>
public sealed record ContextPacked(Guid BuildId, DateTimeOffset At, int Files, long Bytes, string Digest, double DurationMs) : BuildEvent(BuildId, At);

/// <summary>
/// The farm fetched a context the client named by URL (<see cref="SubmitBuild.ContextUrl"/>) into the cache store:
/// its kind, the URL without user information, the commit a git ref named, the context tar's digest and size, and
/// whether a build of the same commit had fetched it already (<paramref name="Cached"/>).
/// </summary>
public sealed record ContextFetched(Guid BuildId, DateTimeOffset At, string Kind, string Url, string? Commit, string Digest, long Bytes, bool Cached) : BuildEvent(BuildId, At);

/// <summary>
/// A <c>--cache-from</c> reference was read before the steps: <paramref name="Entries"/> cache entries from it, or, when
/// it could not be used, none and a <paramref name="Warning"/> (FARM4350: the build goes on without it, as buildx).
/// </summary>
public sealed record CacheImported(Guid BuildId, DateTimeOffset At, string Reference, int Entries, string? Warning = null) : BuildEvent(BuildId, At);

/// <summary>
/// The build cache was exported to a <c>--cache-to</c> reference: its manifest digest, entries and layers; or, with
/// <c>ignore-error=true</c>, a <paramref name="Warning"/> that it failed (FARM4351).
/// </summary>
public sealed record CacheExported(Guid BuildId, DateTimeOffset At, string Reference, string? Digest, int Entries, int Layers, string? Warning = null) : BuildEvent(BuildId, At);

/// <summary>The local farm named the image in its image store: its id (config digest), manifest digest and names.</summary>
public sealed record ImageStored(Guid BuildId, DateTimeOffset At, string Id, string Digest, IReadOnlyList<string> Names) : BuildEvent(BuildId, At);

/// <summary>What a dry run found: each layer step of the stages the target needs, and the build it was compared with.</summary>
/// <param name="PreviousBuild">The previous build of the same Dockerfile and target; null when there is none.</param>
/// <param name="Steps">In graph order.</param>
public sealed record BuildPlanReport(Guid? PreviousBuild, IReadOnlyList<PlannedStep> Steps);

/// <summary>One layer step of a dry run: cached, or why it would run.</summary>
public sealed record PlannedStep(string StepId, string Display, string CacheKey, bool Cached, StepExplanation? Explanation);
