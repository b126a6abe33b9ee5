namespace Farm.Contracts;

// Messages between the CLI, the coordinator and the workers. Records without behaviour; digests travel as
// strings ("sha256:...") so this assembly depends on nothing. Commands are orders, events are past tense.
// MassTransit names exchanges after the full type name: renaming or moving a type is a wire break.

/// <summary>Submit a build. Published to RabbitMQ (or posted over HTTP); answered with the build id at once.</summary>
public sealed record SubmitBuild
{
    /// <summary>Chosen by the submitter so it can follow the build; the coordinator assigns one when empty.</summary>
    public Guid BuildId { get; init; }

    /// <summary>The Dockerfile's text.</summary>
    public required string Dockerfile { get; init; }

    /// <summary>The Dockerfile's path in the context, for error messages.</summary>
    public string DockerfilePath { get; init; } = "Dockerfile";

    /// <summary>Digest of the context tar in the blob store; empty when <see cref="ContextDirectory"/> names the context.</summary>
    public string ContextDigest { get; init; } = string.Empty;

    /// <summary>Digest of the context index (path, mode, size, sha256 of each file) in the blob store.</summary>
    public string? ContextIndexDigest { get; init; }

    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string? Target { get; init; }

    /// <summary>Image names to tag the result with, e.g. <c>127.0.0.1:5100/app:1.0</c>.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    public bool Push { get; init; }

    public bool NoCache { get; init; }

    public bool Pull { get; init; }

    /// <summary>
    /// The context as a directory on the farm's own machine, read in place (its stat cache lives in the farm): only the
    /// local farm accepts it, from a client on the same machine. The Dockerfile path is then relative to it or absolute.
    /// </summary>
    public string? ContextDirectory { get; init; }

    /// <summary>With <see cref="ContextDirectory"/>: the Dockerfile's absolute path, where its own <c>.dockerignore</c> is looked for.</summary>
    public string? DockerfileLocation { get; init; }

    /// <summary>
    /// Where to export the image, as <c>--output</c> says it (<c>type=oci|docker|local,dest=PATH</c>): a path on the
    /// farm's own machine, so only the local farm accepts it.
    /// </summary>
    public string? Output { get; init; }

    /// <summary>
    /// What the build asks the farm to allow beyond its defaults, as BuildKit's <c>--allow</c>: <c>network.host</c>
    /// lets <c>RUN --network=host</c> steps share the worker's network. The farm grants only what its operator allows
    /// (<c>Farm:Builds:Entitlements</c>).
    /// </summary>
    public IReadOnlyList<string> Entitlements { get; init; } = [];

    /// <summary>
    /// The tenant the build belongs to: set by the coordinator from the caller's bearer token (HTTP) or from the
    /// validated AMQP <c>user_id</c> of the message (queue), never taken from the submitter's body; null on a
    /// coordinator without auth. Only that tenant's tokens see, follow and cancel the build.
    /// </summary>
    public string? Tenant { get; init; }

    /// <summary>
    /// The registries (hosts) for which the client passed credentials for this build only: set by the coordinator that
    /// accepted it, which keeps the credentials themselves in memory and nowhere else (never here, in a message, the
    /// grain or Redis), so a coordinator that resumes the build knows they are gone (FARM4241) instead of pushing
    /// without them. Never taken from the submitter's body.
    /// </summary>
    public IReadOnlyList<string> PushCredentialRegistries { get; init; } = [];

    /// <summary>
    /// The ids of the build secrets (<c>farm build --secret</c>) and SSH agents (<c>--ssh</c>) the client passed with
    /// the build: set by the coordinator that accepted it, which keeps the values in memory only, so a coordinator that
    /// resumes the build knows they are gone (FARM4310) instead of running without them. Never taken from the body.
    /// </summary>
    public IReadOnlyList<string> SecretIds { get; init; } = [];

    /// <summary>The ids of the SSH agents passed with the build (<c>--ssh</c>); see <see cref="SecretIds"/>.</summary>
    public IReadOnlyList<string> SshIds { get; init; } = [];

    /// <summary>
    /// What <c>farm build</c> says beyond the Dockerfile about how its RUN steps run and where its named contexts
    /// come from (<c>--network</c>, <c>--add-host</c>, <c>--shm-size</c>, <c>--ulimit</c>, <c>--build-context</c>); null:
    /// none of them. One record, so a submission from an older client and a coordinator that ignores it stay compatible.
    /// </summary>
    public SubmitBuildOptions? Options { get; init; }

    /// <summary>
    /// The platforms to build for (<c>farm build --platform linux/amd64,linux/arm64</c>), <c>os/arch[/variant]</c>:
    /// more than one makes an OCI image index with one image per platform. Empty: linux/amd64, one image, as before.
    /// </summary>
    public IReadOnlyList<string> Platforms { get; init; } = [];

    /// <summary>
    /// A context the farm fetches itself (<c>farm submit URL</c>, <c>farm build --farm URL URL</c>): a git repository or
    /// a tarball over HTTP(S), instead of a context the client uploaded (<see cref="ContextDigest"/> is then empty). The
    /// coordinator that accepts the build fetches it once, before planning, stores it in the cache store as an uploaded
    /// context is stored, and reads the Dockerfile from it at <see cref="DockerfilePath"/> when <see cref="Dockerfile"/>
    /// is empty. Null: the context was uploaded (every client before this field).
    /// </summary>
    public UrlContext? ContextUrl { get; init; }
}

/// <summary>
/// A build context named by URL, as docker takes one: <c>https://HOST/REPO.git#REF:SUBDIR</c> or <c>git://...</c>
/// (<see cref="Kind"/> <c>git</c>), or an http(s) URL of a tar archive, plain or compressed (<c>tarball</c>).
/// </summary>
public sealed record UrlContext
{
    /// <summary><c>git</c> or <c>tarball</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>The repository or the archive, without <c>#REF:SUBDIR</c>.</summary>
    public required string Url { get; init; }

    /// <summary>For git: the branch, tag or commit; null for the default branch.</summary>
    public string? Ref { get; init; }

    /// <summary>For git: the context directory within the checkout; null for its root.</summary>
    public string? Subdirectory { get; init; }
}

/// <summary>
/// The build-wide settings of <c>docker buildx build</c> that are not in the Dockerfile. Every RUN step gets
/// <see cref="Network"/> (unless it says <c>--network</c> itself), <see cref="ExtraHosts"/>, <see cref="ShmSizeBytes"/>
/// and <see cref="Ulimits"/>; they are part of the steps' cache keys, as BuildKit makes them part of an exec op.
/// </summary>
public sealed record SubmitBuildOptions
{
    /// <summary><c>default</c>, <c>none</c> or <c>host</c> (which needs the <c>network.host</c> entitlement); null: <c>default</c>.</summary>
    public string? Network { get; init; }

    /// <summary><c>--add-host</c>: lines <c>HOST:IP</c> appended to the /etc/hosts of RUN steps, in order.</summary>
    public IReadOnlyList<string> ExtraHosts { get; init; } = [];

    /// <summary><c>--shm-size</c>: the size of /dev/shm in RUN steps, in bytes; null keeps 64 MiB, as docker.</summary>
    public long? ShmSizeBytes { get; init; }

    /// <summary><c>--ulimit</c>: resource limits of RUN steps' processes.</summary>
    public IReadOnlyList<Ulimit> Ulimits { get; init; } = [];

    /// <summary>
    /// <c>--build-context NAME=...</c>: a <c>FROM NAME</c> or <c>COPY --from=NAME</c> (and <c>RUN --mount from=NAME</c>)
    /// that names no stage reads this instead of the image or stage of that name.
    /// </summary>
    public IReadOnlyList<NamedContext> NamedContexts { get; init; } = [];

    /// <summary>
    /// <c>--cache-from</c>: registry references of build caches another build exported, in buildx's form
    /// (<c>type=registry,ref=HOST/REPO:TAG</c>); a step the farm's own cache misses is taken from the first that holds
    /// its key. Not part of any cache key. The registries' credentials are the build's, never in here.
    /// </summary>
    public IReadOnlyList<string> CacheFrom { get; init; } = [];

    /// <summary>
    /// <c>--cache-to</c>: where to export the build's cache once the image is built, in buildx's form
    /// (<c>type=registry,ref=HOST/REPO:TAG,mode=min|max</c>). Not part of any cache key.
    /// </summary>
    public IReadOnlyList<string> CacheTo { get; init; } = [];
}

/// <summary>A resource limit of a RUN step's processes (<c>--ulimit nofile=1024:2048</c>), as setrlimit(2) takes it.</summary>
/// <param name="Name">docker's name without <c>RLIMIT_</c>, lower case: <c>nofile</c>, <c>nproc</c>, <c>core</c>, ...</param>
/// <param name="Soft">The soft limit; -1 for unlimited.</param>
/// <param name="Hard">The hard limit; -1 for unlimited.</param>
public sealed record Ulimit(string Name, long Soft, long Hard);

/// <summary>
/// A named build context (buildx's <c>--build-context</c>). Exactly one of <see cref="Image"/>,
/// <see cref="ContextDigest"/>/<see cref="Directory"/> and <see cref="StoredImage"/> is set.
/// </summary>
public sealed record NamedContext
{
    public required string Name { get; init; }

    /// <summary>An image reference (<c>docker-image://REF</c>, or on the local farm the name an <c>oci-layout://</c> image was loaded under).</summary>
    public string? Image { get; init; }

    /// <summary>A directory context packed and uploaded like the main one: its tar's digest in the cache store.</summary>
    public string? ContextDigest { get; init; }

    /// <summary>With <see cref="ContextDigest"/>: its context index's digest.</summary>
    public string? ContextIndexDigest { get; init; }

    /// <summary>A directory on the farm's own machine, read in place (the local farm only, as <see cref="SubmitBuild.ContextDirectory"/>).</summary>
    public string? Directory { get; init; }

    /// <summary>
    /// An image the client put in the cache store itself (<c>--build-context NAME=oci-layout://PATH</c> through a remote
    /// farm): the digest of its manifest, or of an image index whose manifests for the build's platforms it put there
    /// too. Resolved as an image pinned by digest, read from the cache store instead of a registry.
    /// </summary>
    public string? StoredImage { get; init; }

    /// <summary>
    /// With <see cref="StoredImage"/>: by blob digest (the index, manifests, configs and layers), proof that the client
    /// holds the content (SHA-256 over a prefix with the build id and the blob, as <c>Farm.Oci.Stores.PossessionProof</c>
    /// computes it), so that naming a digest another tenant uploaded reads nothing.
    /// </summary>
    public IReadOnlyDictionary<string, string>? StoredImageProofs { get; init; }
}

/// <summary>Build one layer: run one step on top of its parent layers and upload the diff.</summary>
public sealed record BuildLayer
{
    public required Guid JobId { get; init; }

    public required Guid BuildId { get; init; }

    /// <summary>Stable within a build, e.g. <c>stage-1/step-3</c>.</summary>
    public required string StepId { get; init; }

    public required string CacheKey { get; init; }

    /// <summary>1 for the first delivery; the coordinator bounds retries after a worker vanished.</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>Where parent layers are read and the result is written, e.g. <c>registry://127.0.0.1:5100/farm/cache</c> or <c>oci-layout:/var/lib/farm/store</c>.</summary>
    public required string BlobStore { get; init; }

    /// <summary>The layers below this step, bottom first.</summary>
    public IReadOnlyList<LayerRef> Parents { get; init; } = [];

    public required LayerStep Step { get; init; }

    /// <summary><c>gzip</c> (default) or <c>zstd</c>.</summary>
    public string Compression { get; init; } = "gzip";

    /// <summary>
    /// The build's <c>SOURCE_DATE_EPOCH</c>: no entry of the layer gets a modification time later than this, so the
    /// same step gives the same layer bytes on any worker. Null keeps the times the step left.
    /// </summary>
    public DateTimeOffset? SourceDateEpoch { get; init; }

    public DateTimeOffset EnqueuedAt { get; init; }

    /// <summary>
    /// The platform the step's programs run on (<c>os/arch[/variant]</c>): jobs for linux/amd64 (null) go to the farm's
    /// queue, others to that platform's queue, which only workers that run it consume (docs/architecture.md, "Platforms").
    /// </summary>
    public string? Platform { get; init; }

    /// <summary>
    /// Where the worker fetches the secrets the step mounts, when it starts it (docs/architecture.md, "RUN --mount and
    /// build secrets"): the coordinator that holds them and a credential of this job's own. Null when the step mounts
    /// no secret, or when the worker runs in the coordinator's process. Never a value.
    /// </summary>
    public JobSecretsGrant? Secrets { get; init; }
}

/// <summary>
/// A job's right to the secrets of its build: <see cref="Url"/> is the coordinator that accepted the build (the only
/// one holding the values, in memory), <see cref="Credential"/> a random token that coordinator minted for this step
/// of this build, good for the secret ids the step mounts and refused once the step's job has ended. It travels in the
/// job message, so it is worth nothing after the job; it is sent in an <c>Authorization</c> header, never in a URL,
/// and never printed (<see cref="ToString"/> leaves it out).
/// </summary>
public sealed record JobSecretsGrant
{
    /// <summary>The <c>Authorization</c> scheme of a worker's fetch: <c>FarmJob CREDENTIAL</c>.</summary>
    public const string Scheme = "FarmJob";

    /// <summary>The coordinator's endpoint for this build's secrets, e.g. <c>http://127.0.0.1:8480/jobs/secrets/BUILD-ID</c>.</summary>
    public required string Url { get; init; }

    /// <summary>The job's credential; what <see cref="Url"/> answers is <see cref="BuildSecretsHeader"/>'s encoding of the values.</summary>
    public required string Credential { get; init; }

    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Url = ").Append(Url).Append(", Credential = (redacted)");
        return true;
    }
}

/// <summary>A layer blob: compressed digest, uncompressed digest (diff_id), media type and size.</summary>
public sealed record LayerRef(string Digest, string DiffId, string MediaType, long Size);

/// <summary>What one layer-producing step does. Exactly one of the payloads is set, per <see cref="Kind"/>.</summary>
public sealed record LayerStep
{
    public required StepKind Kind { get; init; }

    /// <summary>The instruction as the user wrote it (expanded), for logs and history.</summary>
    public required string Display { get; init; }

    public RunStep? Run { get; init; }

    public CopyStep? Copy { get; init; }

    /// <summary>For <see cref="StepKind.Workdir"/>: the directory to create.</summary>
    public string? Workdir { get; init; }

    /// <summary>
    /// For <see cref="StepKind.Workdir"/>: the USER in force (<c>user[:group]</c>, names or ids; empty is root), who owns
    /// the directories WORKDIR creates, as with BuildKit; directories that exist are left as they are.
    /// </summary>
    public string WorkdirUser { get; init; } = string.Empty;
}

public enum StepKind
{
    Run,
    Copy,
    Add,
    Workdir,
}

/// <summary>A RUN step.</summary>
public sealed record RunStep
{
    /// <summary>The process to run: for the shell form, the stage's SHELL followed by the command line.</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>KEY=value, ENV and ARGs in scope.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>user[:group], names or ids; empty is root.</summary>
    public string User { get; init; } = string.Empty;

    public string WorkingDir { get; init; } = "/";

    /// <summary>
    /// <c>default</c>: a network namespace of the step's own with outbound access, where the worker's loopback (and the
    /// farm's services on it) is out of reach; <c>none</c>: loopback only; <c>host</c>: the worker's network (needs the
    /// build's <c>network.host</c> entitlement).
    /// </summary>
    public string Network { get; init; } = "default";

    /// <summary>Heredoc bodies to provide as files (path in the container, content, mode).</summary>
    public IReadOnlyList<InlineFile> Files { get; init; } = [];

    /// <summary><c>RUN --mount</c>s, in the order written; secret and ssh mounts name ids, never values.</summary>
    public IReadOnlyList<RunStepMount> Mounts { get; init; } = [];

    /// <summary>
    /// Limits the build asks for; null (today always: no build option sets it yet) takes the worker's defaults. A
    /// worker refuses a request above its caps (FARM3023). Not part of the cache key: limits do not change what a step makes.
    /// </summary>
    public StepLimitRequest? Limits { get; init; }

    /// <summary>Lines <c>HOST:IP</c> the step's /etc/hosts gets after its own entries (<c>--add-host</c>).</summary>
    public IReadOnlyList<string> ExtraHosts { get; init; } = [];

    /// <summary>The size of the step's /dev/shm in bytes; null: 64 MiB.</summary>
    public long? ShmSizeBytes { get; init; }

    /// <summary>Resource limits of the step's processes (<c>--ulimit</c>); a worker caps them at its own hard limits.</summary>
    public IReadOnlyList<Ulimit> Ulimits { get; init; } = [];
}

/// <summary>Limits a build asks for on its RUN steps; a null member takes the worker's default.</summary>
public sealed record StepLimitRequest
{
    /// <summary>Bytes of memory.</summary>
    public long? MemoryBytes { get; init; }

    /// <summary>Processes and threads at once.</summary>
    public int? Pids { get; init; }

    /// <summary>CPUs' worth of time, e.g. 1.5.</summary>
    public double? Cpus { get; init; }

    /// <summary>Wall-clock time.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>A COPY or ADD step.</summary>
public sealed record CopyStep
{
    public required IReadOnlyList<string> Sources { get; init; }

    public required string Destination { get; init; }

    public string WorkingDir { get; init; } = "/";

    public string? Chown { get; init; }

    public string? Chmod { get; init; }

    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>For ADD of a URL: the expected digest.</summary>
    public string? Checksum { get; init; }

    /// <summary>Where sources come from: the build context tar, or another stage's or image's layers.</summary>
    public required CopySource From { get; init; }

    /// <summary>Heredoc bodies copied as files.</summary>
    public IReadOnlyList<InlineFile> Files { get; init; } = [];

    /// <summary>
    /// <c>--parents</c>: each source keeps its path (below a <c>/./</c> pivot when it has one) under the destination,
    /// as BuildKit's <c>COPY --parents</c>. False from a coordinator older than this field.
    /// </summary>
    public bool Parents { get; init; }

    /// <summary>ADD <c>--keep-git-dir</c>: a git source's <c>.git</c> directory stays in the layer.</summary>
    public bool KeepGitDir { get; init; }

    /// <summary>
    /// The commit each git source of an ADD named when the build was planned (source as written → commit id), the
    /// commit its cache key is of: the worker checks out exactly it, so a branch that moved since is not what it adds.
    /// </summary>
    public IReadOnlyDictionary<string, string> GitCommits { get; init; } = new Dictionary<string, string>();
}

/// <summary>The source of a COPY: a context tar blob, or a root filesystem made of layers.</summary>
public sealed record CopySource
{
    public string? ContextDigest { get; init; }

    public IReadOnlyList<LayerRef>? Layers { get; init; }
}

public sealed record InlineFile(string Path, string Content, int Mode);

/// <summary>A worker finished a <see cref="BuildLayer"/> job.</summary>
public sealed record LayerBuilt
{
    public required Guid JobId { get; init; }

    public required Guid BuildId { get; init; }

    public required string StepId { get; init; }

    public required string CacheKey { get; init; }

    /// <summary>Null when the step changed nothing: no layer, only a history entry.</summary>
    public LayerRef? Layer { get; init; }

    public required string Worker { get; init; }

    public required PhaseTimings Timings { get; init; }

    /// <summary>The platform the step ran for (<see cref="BuildLayer.Platform"/>); null for linux/amd64.</summary>
    public string? Platform { get; init; }

    /// <summary>The worker ran the step's programs through an emulator (qemu-user-static), not natively.</summary>
    public bool Emulated { get; init; }
}

/// <summary>A worker could not build a layer.</summary>
public sealed record LayerBuildFailed
{
    public required Guid JobId { get; init; }

    public required Guid BuildId { get; init; }

    public required string StepId { get; init; }

    /// <summary>
    /// The job's cache key, so the coordinator routes the failure to the one grain that waits for it. Null from a
    /// worker older than this field: such a failure cannot be routed and the job runs into its deadline.
    /// </summary>
    public string? CacheKey { get; init; }

    public required string Worker { get; init; }

    /// <summary>The FARMnnnn code of the error.</summary>
    public required string Code { get; init; }

    public required string Message { get; init; }

    /// <summary>The step's exit code when a RUN failed.</summary>
    public int? ExitCode { get; init; }

    /// <summary>The last lines of the step's output.</summary>
    public IReadOnlyList<string> OutputTail { get; init; } = [];

    /// <summary>True when the failure says nothing about the step itself (a store or worker fault): retry elsewhere.</summary>
    public bool Retryable { get; init; }
}

/// <summary>One line a running step printed.</summary>
public sealed record StepLogLine(Guid BuildId, string StepId, Guid JobId, string Stream, string Line, DateTimeOffset At);

/// <summary>When each phase of a job started and ended, after the Remote Execution API's ExecutedActionMetadata.</summary>
public sealed record PhaseTimings
{
    public DateTimeOffset Queued { get; init; }

    public DateTimeOffset WorkerStart { get; init; }

    public DateTimeOffset InputFetchStart { get; init; }

    public DateTimeOffset InputFetchEnd { get; init; }

    public DateTimeOffset ExecutionStart { get; init; }

    public DateTimeOffset ExecutionEnd { get; init; }

    public DateTimeOffset DiffStart { get; init; }

    public DateTimeOffset DiffEnd { get; init; }

    public DateTimeOffset UploadStart { get; init; }

    public DateTimeOffset UploadEnd { get; init; }
}

/// <summary>The coordinator recorded a <see cref="SubmitBuild"/> as queued: the answer to a request, sent at once.</summary>
public sealed record BuildAccepted
{
    public required Guid BuildId { get; init; }
}

/// <summary>A submitted build ended: the image digest when it succeeded, the FARMnnnn code and message when it failed.</summary>
public sealed record BuildCompleted
{
    public required Guid BuildId { get; init; }

    public required bool Succeeded { get; init; }

    /// <summary>The manifest digest, <c>sha256:...</c>; null when the build failed.</summary>
    public string? ImageDigest { get; init; }

    /// <summary>The references pushed.</summary>
    public IReadOnlyList<string> Pushed { get; init; } = [];

    /// <summary>The FARMnnnn code of the failure; null when the build succeeded.</summary>
    public string? ErrorCode { get; init; }

    public string? Error { get; init; }

    /// <summary>The tenant of the build (<see cref="SubmitBuild.Tenant"/>); null on a coordinator without auth.</summary>
    public string? Tenant { get; init; }
}

/// <summary>
/// A worker is alive: published every few seconds (and once with <see cref="Stopping"/> set when it shuts down) so
/// coordinators know each worker's slots, load and last contact, and forget one that stops reporting.
/// </summary>
public sealed record WorkerHeartbeat
{
    /// <summary>The worker's name, unique per process (the <c>worker</c> of its results).</summary>
    public required string Name { get; init; }

    /// <summary>Jobs it runs at once.</summary>
    public required int Slots { get; init; }

    /// <summary>Jobs it runs now.</summary>
    public int BusySlots { get; init; }

    /// <summary>Bytes of extracted layers in its local layer store.</summary>
    public long LayerStoreBytes { get; init; }

    /// <summary>Jobs it finished since it started, whatever their outcome.</summary>
    public long JobsDone { get; init; }

    /// <summary>The worker's assembly version.</summary>
    public string Version { get; init; } = string.Empty;

    /// <summary>The host it runs on.</summary>
    public string Host { get; init; } = string.Empty;

    /// <summary>Port of its Prometheus <c>/metrics</c>; 0 when off.</summary>
    public int MetricsPort { get; init; }

    /// <summary>
    /// The queue of its own that it also takes jobs from (<c>farm-build-layer.NAME</c>): coordinators send there the jobs
    /// whose parent layers it holds. Null when it has none (the local farm's worker, older workers): it only gets jobs
    /// from the farm's queue.
    /// </summary>
    public string? AffinityQueue { get; init; }

    /// <summary>
    /// The platforms it runs steps for, <c>os/arch[/variant]</c>: its own first, then those it emulates
    /// (<see cref="EmulatedPlatforms"/>). Empty from an older worker: linux/amd64 only.
    /// </summary>
    public IReadOnlyList<string> Platforms { get; init; } = [];

    /// <summary>The platforms of <see cref="Platforms"/> it runs through qemu-user-static rather than natively.</summary>
    public IReadOnlyList<string> EmulatedPlatforms { get; init; } = [];

    /// <summary>Compressed layer bytes it downloaded from blob stores since it started.</summary>
    public long BytesDownloaded { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset SentAt { get; init; }

    /// <summary>The worker is shutting down: forget it now rather than after missed heartbeats.</summary>
    public bool Stopping { get; init; }
}

/// <summary>
/// Stop a job: every build that awaited it was cancelled. Published to every worker (each has its own temporary
/// queue); the one running it kills it, and any that has not started it yet skips it.
/// </summary>
public sealed record CancelLayerJob
{
    public required Guid JobId { get; init; }

    public required string CacheKey { get; init; }
}
