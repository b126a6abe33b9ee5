using System.Globalization;

namespace Farm.Containers.Sandbox;

/// <summary>
/// What one RUN step may use: memory, processes and CPU through cgroups, and wall-clock time. A null member means no
/// limit. The worker fills these from its operator's defaults and caps (<c>Farm:Worker:StepLimits</c>).
/// See <see href="https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#control-groups">runtime-spec: control groups</see>.
/// </summary>
public sealed record StepLimits
{
    /// <summary>No limits at all.</summary>
    public static StepLimits None { get; } = new();

    /// <summary>
    /// Bytes of memory (anonymous and page cache, without swap) the step's processes may hold together; going over
    /// gets the largest of them killed by the kernel, and the step fails with FARM3020 when it then exits non-zero.
    /// </summary>
    public long? MemoryBytes { get; init; }

    /// <summary>
    /// Processes and threads the step may have at once (<c>linux.resources.pids.limit</c>). A step that reaches it is
    /// stopped at once and fails with FARM3021: forks failing break most programs, and a fork bomb would otherwise
    /// hold its slot until the timeout.
    /// </summary>
    public int? Pids { get; init; }

    /// <summary>CPUs' worth of time per period (<c>linux.resources.cpu.quota</c> over <c>period</c>), e.g. 1.5; throttles, never kills.</summary>
    public double? Cpus { get; init; }

    /// <summary>Wall-clock time the step may run; it is killed after that and fails with FARM3022.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Whether a cgroup is needed at all (a timeout alone needs none).</summary>
    public bool NeedsCgroup => MemoryBytes is not null || Pids is not null || Cpus is not null;

    /// <summary>Bytes as people write them: <c>256 MiB</c>, <c>2 GiB</c>, <c>1536 KiB</c>, <c>100 B</c>.</summary>
    public static string FormatBytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        var unit = 0;
        double value = bytes;
        while (unit < units.Length - 1 && value >= 1024)
        {
            value /= 1024;
            unit++;
        }

        return value.ToString(value == Math.Floor(value) ? "0" : "0.#", CultureInfo.InvariantCulture) + " " + units[unit];
    }

    /// <summary>A duration as people write it: <c>90 s</c>, <c>5 min</c>, <c>1 h 30 min</c>.</summary>
    public static string FormatDuration(TimeSpan time)
    {
        if (time < TimeSpan.FromMinutes(2) || time.Ticks % TimeSpan.TicksPerMinute != 0)
        {
            return time.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s";
        }

        var hours = (long)time.TotalHours;
        var minutes = time.Minutes;
        return hours == 0 ? $"{minutes} min" : minutes == 0 ? $"{hours} h" : $"{hours} h {minutes} min";
    }
}
