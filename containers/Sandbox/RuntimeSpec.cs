using System.Text.Json.Serialization;

namespace Farm.Containers.Sandbox;

/// <summary>
/// The subset of the OCI runtime configuration (config.json) Farm writes; see
/// <see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md">runtime-spec config.md</see>.
/// </summary>
public sealed record RuntimeSpec
{
    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#specification-version">ociVersion</see>.</summary>
    public string OciVersion { get; init; } = "1.0.2";

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#process">process</see>.</summary>
    public required RuntimeProcess Process { get; init; }

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#root">root</see>.</summary>
    public required RuntimeRoot Root { get; init; }

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#hostname">hostname</see>.</summary>
    public string? Hostname { get; init; }

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#mounts">mounts</see>, in mount order.</summary>
    public IReadOnlyList<RuntimeMount> Mounts { get; init; } = [];

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md">linux</see>.</summary>
    public required RuntimeLinux Linux { get; init; }
}

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#process">process</see>.</summary>
public sealed record RuntimeProcess
{
    public bool Terminal { get; init; }

    public required RuntimeUser User { get; init; }

    public required IReadOnlyList<string> Args { get; init; }

    public IReadOnlyList<string> Env { get; init; } = [];

    public required string Cwd { get; init; }

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#linux-process">capabilities</see>.</summary>
    public RuntimeCapabilities? Capabilities { get; init; }

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#posix-process">rlimits</see>.</summary>
    public IReadOnlyList<RuntimeRlimit> Rlimits { get; init; } = [];

    public bool NoNewPrivileges { get; init; }
}

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#user">process.user</see> (POSIX).</summary>
public sealed record RuntimeUser(uint Uid, uint Gid, IReadOnlyList<uint>? AdditionalGids = null);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#linux-process">process.capabilities</see>.</summary>
public sealed record RuntimeCapabilities(
    IReadOnlyList<string> Bounding,
    IReadOnlyList<string> Effective,
    IReadOnlyList<string> Permitted);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#posix-process">process.rlimits</see> entry.</summary>
public sealed record RuntimeRlimit(string Type, ulong Hard, ulong Soft);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#root">root</see>.</summary>
public sealed record RuntimeRoot(string Path, bool Readonly = false);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config.md#mounts">mounts</see> entry.</summary>
public sealed record RuntimeMount(string Destination, string Type, string Source, IReadOnlyList<string> Options);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md">linux</see>.</summary>
public sealed record RuntimeLinux
{
    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#namespaces">namespaces</see>.</summary>
    public required IReadOnlyList<RuntimeNamespace> Namespaces { get; init; }

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#masked-paths">maskedPaths</see>.</summary>
    public IReadOnlyList<string> MaskedPaths { get; init; } = [];

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#readonly-paths">readonlyPaths</see>.</summary>
    public IReadOnlyList<string> ReadonlyPaths { get; init; } = [];

    /// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#control-groups">resources</see>.</summary>
    public RuntimeResources? Resources { get; init; }

    /// <summary>
    /// <see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#cgroups-path">cgroupsPath</see>:
    /// absolute, from the root of each hierarchy; null lets runc choose.
    /// </summary>
    public string? CgroupsPath { get; init; }
}

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#namespaces">linux.namespaces</see> entry.</summary>
/// <param name="Type">The namespace kind (<c>pid</c>, <c>network</c>, ...).</param>
/// <param name="Path">An existing namespace to join (e.g. <c>/run/netns/NAME</c>); null creates a new one.</param>
public sealed record RuntimeNamespace(string Type, string? Path = null);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#control-groups">linux.resources</see>.</summary>
/// <param name="Devices"><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#allowed-device-list">devices</see>.</param>
/// <param name="Pids"><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#pids">pids</see>.</param>
/// <param name="Cpu"><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#cpu">cpu</see>.</param>
/// <param name="Memory"><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#memory">memory</see>.</param>
public sealed record RuntimeResources(IReadOnlyList<RuntimeDeviceRule> Devices, RuntimePids? Pids = null, RuntimeCpu? Cpu = null, RuntimeMemory? Memory = null);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#memory">linux.resources.memory</see>.</summary>
/// <param name="Limit">Bytes of memory the cgroup may hold.</param>
public sealed record RuntimeMemory(long Limit);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#pids">linux.resources.pids</see>.</summary>
/// <param name="Limit">Most tasks (processes and threads) the cgroup may hold.</param>
public sealed record RuntimePids(long Limit);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#cpu">linux.resources.cpu</see> (CFS bandwidth).</summary>
/// <param name="Quota">Microseconds of CPU time the cgroup may use per <paramref name="Period"/>.</param>
/// <param name="Period">The CFS period in microseconds.</param>
public sealed record RuntimeCpu(long Quota, ulong Period);

/// <summary><see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#allowed-device-list">linux.resources.devices</see> entry.</summary>
public sealed record RuntimeDeviceRule(bool Allow, string Access);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(RuntimeSpec))]
internal sealed partial class RuntimeSpecJsonContext : JsonSerializerContext;
