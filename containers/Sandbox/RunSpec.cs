using Farm.Containers.Snapshots;

namespace Farm.Containers.Sandbox;

/// <summary>Network of a RUN step, as <c>RUN --network=default|none|host</c>.</summary>
public enum NetworkMode
{
    /// <summary>
    /// The default: a network namespace of its own with outbound access through slirp4netns (<see cref="SlirpNetwork"/>),
    /// from which the worker's loopback, and with it every service the farm keeps there, is out of reach.
    /// </summary>
    Private,

    /// <summary>A new network namespace with loopback only.</summary>
    None,

    /// <summary>Share the worker's network namespace (<c>--network=host</c>; an entitlement the farm's operator grants).</summary>
    Host,
}

/// <summary>
/// An extra bind mount into the sandbox (e.g. <c>RUN --mount=type=bind</c>); see
/// <see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#mounts">runtime-spec: mounts</see>.
/// </summary>
/// <param name="Source">Absolute host path.</param>
/// <param name="Destination">Absolute path inside the container.</param>
/// <param name="ReadOnly">Mount read-only (the default).</param>
public sealed record BindMount(string Source, string Destination, bool ReadOnly = true);

/// <summary>
/// An empty tmpfs in the sandbox (<c>RUN --mount=type=tmpfs</c>), gone when the run ends; see
/// <see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#mounts">runtime-spec: mounts</see>.
/// </summary>
/// <param name="Destination">Absolute path inside the container.</param>
/// <param name="SizeBytes">Its size limit; null for the kernel's default (half the memory).</param>
public sealed record TmpfsMount(string Destination, long? SizeBytes = null);

/// <summary>
/// What one RUN step executes and how. The runner turns it into an OCI runtime config
/// (<see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md">runtime-spec config.md</see>).
/// </summary>
public sealed record RunSpec
{
    /// <summary>Argument vector; <c>Args[0]</c> is looked up in the container's PATH (<c>process.args</c>).</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>The mounted root file system (an overlay's merged directory); written to, never made read-only.</summary>
    public required string RootfsPath { get; init; }

    /// <summary>
    /// The overlay upperdir beneath <see cref="RootfsPath"/>, when it is an overlay: the run records which mount
    /// points existed so their stubs can be removed from it afterwards (<see cref="OverlaySnapshot.Seal"/>).
    /// </summary>
    public string? UpperDir { get; init; }

    /// <summary><c>KEY=value</c> entries; PATH, HOSTNAME and HOME get defaults when absent (<c>process.env</c>).</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>Absolute working directory, created (root-owned, 0755) when the image lacks it (<c>process.cwd</c>).</summary>
    public string WorkingDirectory { get; init; } = "/";

    /// <summary>The Dockerfile USER value (<c>name</c>, <c>uid</c>, <c>name:group</c>, <c>uid:gid</c>); empty means root.</summary>
    public string User { get; init; } = "";

    /// <summary>The container's hostname (<c>hostname</c>), also written into its /etc/hosts.</summary>
    public string Hostname { get; init; } = "farmsandbox";

    /// <summary>Network namespace choice.</summary>
    public NetworkMode Network { get; init; } = NetworkMode.Private;

    /// <summary>
    /// The network namespace a <see cref="NetworkMode.Private"/> run joins (a bind-mounted namespace file).
    /// <see cref="SandboxRunner"/> creates one per run; <c>farm run</c> gives its container's.
    /// </summary>
    public string? NetworkNamespacePath { get; init; }

    /// <summary>Extra bind mounts, applied after the standard ones.</summary>
    public IReadOnlyList<BindMount> Mounts { get; init; } = [];

    /// <summary>tmpfs mounts, applied after the bind mounts.</summary>
    public IReadOnlyList<TmpfsMount> Tmpfs { get; init; } = [];

    /// <summary>Memory, pids, CPU and time the step may use (<see cref="StepLimits.None"/> by default).</summary>
    public StepLimits Limits { get; init; } = StepLimits.None;

    /// <summary>Entries <c>HOST:IP</c> appended to the sandbox's /etc/hosts (<c>--add-host</c>), as <c>IP\tHOST</c> lines.</summary>
    public IReadOnlyList<string> ExtraHosts { get; init; } = [];

    /// <summary>The size of /dev/shm in bytes; null: 64 MiB, docker's default.</summary>
    public long? ShmSizeBytes { get; init; }

    /// <summary>Resource limits (<c>--ulimit</c>) replacing the sandbox's defaults; each is capped at the host's hard limit.</summary>
    public IReadOnlyList<Contracts.Ulimit> Ulimits { get; init; } = [];
}

/// <summary>One line a sandboxed command wrote.</summary>
/// <param name="Stream">Which stream it came from.</param>
/// <param name="Text">The line without its line terminator.</param>
public readonly record struct OutputLine(OutputStream Stream, string Text);

/// <summary>The standard stream of an <see cref="OutputLine"/>.</summary>
public enum OutputStream
{
    /// <summary>Standard output.</summary>
    Stdout,

    /// <summary>Standard error.</summary>
    Stderr,
}
