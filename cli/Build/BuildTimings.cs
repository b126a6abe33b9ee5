using System.Diagnostics;

namespace Farm.Cli.Build;

/// <summary>
/// With <c>FARM_TRACE_TIMINGS=1</c>, <c>farm build</c> prints on standard error how long after the process started
/// each phase of a build ended (<c>farm: timing: NAME +MS ms</c>): where a warm rebuild's time goes, without a profiler.
/// </summary>
internal static class BuildTimings
{
    private static readonly DateTime? Start = Environment.GetEnvironmentVariable("FARM_TRACE_TIMINGS") == "1"
        ? Process.GetCurrentProcess().StartTime.ToUniversalTime()
        : null;

    /// <summary>Prints <paramref name="phase"/> and the milliseconds since the process started, when enabled.</summary>
    public static void Mark(string phase)
    {
        if (Start is { } start)
        {
            Console.Error.WriteLine($"farm: timing: {phase} +{(DateTime.UtcNow - start).TotalMilliseconds:F0} ms");
        }
    }
}
