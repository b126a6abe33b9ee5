using System.Text.Json.Serialization;
using Farm.Contracts;

namespace Farm.Containers;

/// <summary>The network a container gets, as <c>docker run --network</c>.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ContainerNetwork>))]
public enum ContainerNetwork
{
    /// <summary>Its own network namespace with outbound access and published ports through slirp4netns (the default).</summary>
    Private,

    /// <summary>The host's network namespace; ports need no publishing.</summary>
    Host,

    /// <summary>Its own network namespace with loopback only.</summary>
    None,
}

/// <summary>Where a container is in its life, as <c>docker ps</c> shows it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ContainerStatus>))]
public enum ContainerStatus
{
    /// <summary>Created, never started.</summary>
    Created,

    /// <summary>Its process runs.</summary>
    Running,

    /// <summary>Its process ended; <see cref="ContainerState.ExitCode"/> says how.</summary>
    Exited,
}

/// <summary>A process recorded so that a later farm process can tell whether it still runs (pid reuse aside).</summary>
/// <param name="Pid">The process id.</param>
/// <param name="StartTicks">Field 22 of <c>/proc/PID/stat</c>: its start time in clock ticks after boot.</param>
public sealed record ProcessIdentity(int Pid, long StartTicks)
{
    /// <summary>The identity of the process <paramref name="pid"/> now, or null when it does not run.</summary>
    public static ProcessIdentity? Of(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces; fields after it are plain.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return new ProcessIdentity(pid, long.Parse(fields[19], System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Whether this very process still runs (a zombie counts as ended).</summary>
    public bool IsAlive()
    {
        if (Of(Pid) is not { } now || now.StartTicks != StartTicks)
        {
            return false;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{Pid}/stat");
            return stat[stat.LastIndexOf(')')..].Split(' ')[1] != "Z";
        }
        catch (IOException)
        {
            return false;
        }
    }
}

/// <summary>
/// A container as Farm keeps it in <c>$FARM_STATE_DIR/containers/ID/config.json</c>: what it runs, from which image,
/// with which ports, and how it ended. Written by whichever farm process changes it (atomically, by rename).
/// </summary>
public sealed record ContainerState
{
    /// <summary>64 hex digits; the first 12 are the short id.</summary>
    public required string Id { get; init; }

    /// <summary>The unique name (<c>--name</c>, else generated).</summary>
    public required string Name { get; init; }

    /// <summary>The image as the user named it.</summary>
    public required string Image { get; init; }

    /// <summary>The image id (config digest) the container was created from.</summary>
    public required string ImageId { get; init; }

    /// <summary>The layers of the image, bottom first, to mount again on every start.</summary>
    public required IReadOnlyList<LayerRef> Layers { get; init; }

    /// <summary>The process: entrypoint and command resolved.</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>The command given on the command line (replacing the image's CMD), if any: what a commit keeps as CMD.</summary>
    public IReadOnlyList<string>? Command { get; init; }

    /// <summary>Environment, <c>K=V</c>: the image's with <c>-e</c> applied.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary><c>--entrypoint</c> as given, for commit; null when the image's was kept.</summary>
    public IReadOnlyList<string>? EntrypointOverride { get; init; }

    /// <summary>Bind and tmpfs mounts (<c>-v</c>, <c>--mount</c>), set up again on every start.</summary>
    public IReadOnlyList<ContainerMount> Mounts { get; init; } = [];

    /// <summary><c>-e</c> values as given, for commit.</summary>
    public IReadOnlyList<string> EnvOverrides { get; init; } = [];

    /// <summary>Working directory (<c>-w</c> or the image's).</summary>
    public string WorkingDir { get; init; } = "/";

    /// <summary><c>-w</c> as given, for commit.</summary>
    public string? WorkingDirOverride { get; init; }

    /// <summary>User (<c>-u</c> or the image's).</summary>
    public string User { get; init; } = "";

    /// <summary><c>-u</c> as given, for commit.</summary>
    public string? UserOverride { get; init; }

    /// <summary>Whether the process has a terminal.</summary>
    public bool Tty { get; init; }

    /// <summary>Whether the process's stdin stays open (<c>-i</c>).</summary>
    public bool Interactive { get; init; }

    /// <summary>The signal <c>farm stop</c> sends first (the image's STOPSIGNAL, else SIGTERM), as runc kill takes it.</summary>
    public string StopSignal { get; init; } = "TERM";

    /// <summary><c>--rm</c>: removed once its process ends.</summary>
    public bool AutoRemove { get; init; }

    /// <summary>The network choice.</summary>
    public ContainerNetwork Network { get; init; }

    /// <summary>Published ports.</summary>
    public IReadOnlyList<PortMapping> Ports { get; init; } = [];

    /// <summary>Container hostname (the short id, as docker).</summary>
    public required string Hostname { get; init; }

    /// <summary>When it was created.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>Where it is in its life.</summary>
    public ContainerStatus Status { get; init; }

    /// <summary>When it last started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When it last ended.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>The exit code of its last run (128 + n when killed by signal n).</summary>
    public int? ExitCode { get; init; }

    /// <summary>Why its last start failed (docker's State.Error); null when the process ran.</summary>
    public string? Error { get; init; }

    /// <summary>The farm process that runs runc for it and records its end.</summary>
    public ProcessIdentity? Supervisor { get; init; }

    /// <summary>The slirp4netns process of a private network.</summary>
    public ProcessIdentity? Slirp { get; init; }

    /// <summary>The short id docker shows.</summary>
    [JsonIgnore]
    public string ShortId => Id[..12];
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(ContainerState))]
internal sealed partial class ContainerJsonContext : JsonSerializerContext;
