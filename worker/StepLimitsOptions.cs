using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Farm.Containers.Sandbox;
using Farm.Contracts;

namespace Farm.Worker;

/// <summary>
/// The operator's limits on RUN steps, bound from <c>Farm:Worker:StepLimits</c>: a default per limit (what a step gets
/// when its build asks for nothing) and a cap (<c>Max*</c>, the most a build may ask for). A cap always applies: with
/// no default, a step gets the cap. Memory is in bytes or with a binary unit (<c>512MiB</c>, <c>4GiB</c>, <c>2g</c>);
/// 0, or an empty value, means no limit. See docs/architecture.md, "Execution sandbox".
/// </summary>
public sealed class StepLimitsOptions : IValidatableObject
{
    /// <summary>Memory of a step by default (<c>4GiB</c>).</summary>
    public string Memory { get; set; } = "4GiB";

    /// <summary>The most memory a build may ask for (<c>16GiB</c>).</summary>
    public string MaxMemory { get; set; } = "16GiB";

    /// <summary>Processes and threads of a step by default (4096).</summary>
    [Range(0, 4_194_304)]
    public int Pids { get; set; } = 4096;

    /// <summary>The most processes and threads a build may ask for (32768).</summary>
    [Range(0, 4_194_304)]
    public int MaxPids { get; set; } = 32768;

    /// <summary>CPUs' worth of time a step may use by default; 0 (default) throttles nothing.</summary>
    [Range(0.0, 1024.0)]
    public double Cpus { get; set; }

    /// <summary>The most CPUs a build may ask for; 0 (default) is no cap.</summary>
    [Range(0.0, 1024.0)]
    public double MaxCpus { get; set; }

    /// <summary>
    /// Wall-clock time of a step by default (45 minutes: below the coordinator's one-hour job timeout, so a step
    /// that hangs fails with its own error, FARM3022, rather than the coordinator's FARM4006); zero is no limit.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(45);

    /// <summary>The most time a build may ask for (55 minutes); keep it below <c>Farm:Coordinator:JobTimeout</c>.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan MaxTimeout { get; set; } = TimeSpan.FromMinutes(55);

    // Below these a step cannot even start its shell (runc's init, sh, a child).
    private const long MinMemory = 16L << 20;
    private const int MinPids = 16;
    private const double MinCpus = 0.01;

    /// <summary>The limits of a step whose build asked for <paramref name="request"/> (null: nothing).</summary>
    /// <exception cref="StepLimitAboveCapException">The request is above a cap (FARM3023).</exception>
    public StepLimits Resolve(StepLimitRequest? request)
    {
        var maxMemory = ParseBytes(MaxMemory);
        var maxPids = NullIfZero(MaxPids);
        var maxCpus = NullIfZero(MaxCpus);
        var maxTimeout = MaxTimeout > TimeSpan.Zero ? MaxTimeout : (TimeSpan?)null;
        if (request is not null)
        {
            Refuse("memory", request.MemoryBytes, maxMemory, "Memory", b => StepLimits.FormatBytes(b));
            Refuse("processes", request.Pids, maxPids, "Pids", p => p.ToString(CultureInfo.InvariantCulture));
            Refuse("CPUs", request.Cpus, maxCpus, "Cpus", c => c.ToString(CultureInfo.InvariantCulture));
            Refuse("time", request.Timeout, maxTimeout, "Timeout", StepLimits.FormatDuration);
        }

        return new StepLimits
        {
            MemoryBytes = request?.MemoryBytes ?? ParseBytes(Memory) ?? maxMemory,
            Pids = request?.Pids ?? NullIfZero(Pids) ?? maxPids,
            Cpus = request?.Cpus ?? NullIfZero(Cpus) ?? maxCpus,
            Timeout = request?.Timeout ?? (Timeout > TimeSpan.Zero ? Timeout : (TimeSpan?)null) ?? maxTimeout,
        };
    }

    /// <summary>Shown at start-up: what a step gets when its build asks for nothing.</summary>
    public override string ToString()
    {
        var limits = Resolve(null);
        return string.Join(", ",
            "memory " + (limits.MemoryBytes is { } m ? StepLimits.FormatBytes(m) : "unlimited"),
            "pids " + (limits.Pids?.ToString(CultureInfo.InvariantCulture) ?? "unlimited"),
            "cpus " + (limits.Cpus?.ToString(CultureInfo.InvariantCulture) ?? "unlimited"),
            "timeout " + (limits.Timeout is { } t ? StepLimits.FormatDuration(t) : "none"));
    }

    /// <summary>Parses <c>268435456</c>, <c>256MiB</c>, <c>256m</c>, <c>1.5GiB</c> (units are binary, as Docker's <c>--memory</c>); null for no limit.</summary>
    /// <exception cref="FormatException">Not a size.</exception>
    public static long? ParseBytes(string? text)
    {
        var value = (text ?? "").Trim();
        if (value.Length == 0)
        {
            return null;
        }

        var split = value.Length;
        while (split > 0 && char.IsAsciiLetter(value[split - 1]))
        {
            split--;
        }

        var shift = value[split..].ToUpperInvariant() switch
        {
            "" or "B" => 0,
            "K" or "KB" or "KIB" => 10,
            "M" or "MB" or "MIB" => 20,
            "G" or "GB" or "GIB" => 30,
            "T" or "TB" or "TIB" => 40,
            _ => throw new FormatException($"'{text}' is not a size: use bytes or a number with KiB, MiB, GiB or TiB (e.g. 512MiB)."),
        };
        if (!double.TryParse(value[..split].Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number) || number * Math.Pow(2, shift) >= long.MaxValue)
        {
            throw new FormatException($"'{text}' is not a size: use bytes or a number with KiB, MiB, GiB or TiB (e.g. 512MiB).");
        }

        var bytes = (long)(number * Math.Pow(2, shift));
        return bytes == 0 ? null : bytes;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        long? memory = null, maxMemory = null;
        foreach (var (name, text) in (ReadOnlySpan<(string, string)>)[(nameof(Memory), Memory), (nameof(MaxMemory), MaxMemory)])
        {
            try
            {
                var bytes = ParseBytes(text);
                if (bytes < MinMemory)
                {
                    results.Add(new ValidationResult($"StepLimits:{name} is {text}; a step needs at least {StepLimits.FormatBytes(MinMemory)} (or 0 for no limit).", [name]));
                }

                (memory, maxMemory) = name == nameof(Memory) ? (bytes, maxMemory) : (memory, bytes);
            }
            catch (FormatException e)
            {
                results.Add(new ValidationResult($"StepLimits:{name}: {e.Message}", [name]));
            }
        }

        CheckMinimum(results, nameof(Pids), Pids, MinPids);
        CheckMinimum(results, nameof(MaxPids), MaxPids, MinPids);
        CheckMinimum(results, nameof(Cpus), Cpus, MinCpus);
        CheckMinimum(results, nameof(MaxCpus), MaxCpus, MinCpus);
        CheckMinimum(results, nameof(Timeout), Timeout, TimeSpan.FromSeconds(1));
        CheckMinimum(results, nameof(MaxTimeout), MaxTimeout, TimeSpan.FromSeconds(1));

        CheckCap(results, nameof(Memory), memory, maxMemory, StepLimits.FormatBytes);
        CheckCap(results, nameof(Pids), NullIfZero(Pids), NullIfZero(MaxPids), p => p.ToString(CultureInfo.InvariantCulture));
        CheckCap(results, nameof(Cpus), NullIfZero(Cpus), NullIfZero(MaxCpus), c => c.ToString(CultureInfo.InvariantCulture));
        CheckCap<TimeSpan>(results, nameof(Timeout), Timeout > TimeSpan.Zero ? Timeout : null, MaxTimeout > TimeSpan.Zero ? MaxTimeout : null, StepLimits.FormatDuration);
        return results;
    }

    private static void CheckMinimum<T>(List<ValidationResult> results, string name, T value, T minimum)
        where T : IComparable<T>
    {
        if (value.CompareTo(default!) != 0 && value.CompareTo(minimum) < 0)
        {
            results.Add(new ValidationResult($"StepLimits:{name} is {value}; it must be at least {minimum}, or 0 for no limit.", [name]));
        }
    }

    private static void CheckCap<T>(List<ValidationResult> results, string name, T? value, T? cap, Func<T, string> show)
        where T : struct, IComparable<T>
    {
        if (value is { } v && cap is { } c && v.CompareTo(c) > 0)
        {
            results.Add(new ValidationResult($"StepLimits:{name} ({show(v)}) is above StepLimits:Max{name} ({show(c)}); a default must be within its cap.", [name]));
        }
    }

    private static void Refuse<T>(string what, T? requested, T? cap, string setting, Func<T, string> show)
        where T : struct, IComparable<T>
    {
        if (requested is { } r && cap is { } c && r.CompareTo(c) > 0)
        {
            throw new StepLimitAboveCapException(
                $"the build asks for {show(r)} of {what} per step, above this farm's cap of {show(c)}; ask for at most that, or have the farm's operator raise Farm:Worker:StepLimits:Max{setting}.");
        }
    }

    private static int? NullIfZero(int value) => value == 0 ? null : value;

    private static double? NullIfZero(double value) => value == 0 ? null : value;
}

/// <summary>FARM3023: a build asked for a step limit above the worker's cap. Refused rather than lowered, so a step never fails on a limit it did not ask for.</summary>
public sealed class StepLimitAboveCapException(string message)
    : FarmException(FarmErrorCodes.StepLimitAboveCap, message), IStepFailure
{
    int? IStepFailure.ExitCode => null;

    IReadOnlyList<string> IStepFailure.OutputTail => [];
}
