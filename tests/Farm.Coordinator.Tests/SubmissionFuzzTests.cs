using System.Globalization;
using Farm.Fuzzing;

namespace Farm.Coordinator.Tests;

/// <summary>
/// A few thousand mutations of valid submissions, read as <c>POST /builds</c> binds them and as the queue's consumer
/// gets them, through validation to the build graph (bench/fuzz/run.sh runs many more). Deterministic from the seed;
/// FARM_FUZZ_SEED and FARM_FUZZ_ITERATIONS change the run, failing inputs are saved under FARM_FUZZ_OUT (default
/// /tmp/farm-fuzz).
/// </summary>
public sealed class SubmissionFuzzTests
{
    [Fact]
    public void Mutated_submissions_are_accepted_or_refused_with_a_catalogued_FARM_error_in_time()
    {
        var options = new FuzzOptions
        {
            Seed = int.TryParse(Environment.GetEnvironmentVariable("FARM_FUZZ_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : 20261206,
            Iterations = int.TryParse(Environment.GetEnvironmentVariable("FARM_FUZZ_ITERATIONS"), CultureInfo.InvariantCulture, out var n) ? n : 3_000,
            Scale = FuzzScale.Small,
            PerInputLimit = TimeSpan.FromSeconds(30),
            OutputDirectory = Environment.GetEnvironmentVariable("FARM_FUZZ_OUT") is { Length: > 0 } dir ? dir : Path.Combine(Path.GetTempPath(), "farm-fuzz"),
        };

        var report = FuzzRunner.Run(new SubmissionFuzzTarget(), options);

        Assert.True(report.Findings.Count == 0, report.ToString());
        Assert.Contains(Farm.Contracts.FarmErrorCodes.InvalidSubmission, report.Outcomes.Keys);
        Assert.Contains("ok", report.Outcomes.Keys);
    }
}
