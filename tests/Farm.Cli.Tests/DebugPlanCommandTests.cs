using System.Text.Json;

namespace Farm.Cli.Tests;

public sealed class DebugPlanCommandTests : IDisposable
{
    private readonly string _context = Directory.CreateTempSubdirectory("farm-plan-").FullName;

    public DebugPlanCommandTests()
    {
        File.WriteAllText(Path.Combine(_context, "Dockerfile"), """
            ARG BASE=busybox
            FROM $BASE AS build
            ARG VERSION=1.0
            RUN echo $VERSION > /version
            FROM scratch AS unused
            COPY x /x
            FROM ${BASE}
            COPY --from=build /version /version
            CMD ["cat", "/version"]
            """);
    }

    public void Dispose() => Directory.Delete(_context, recursive: true);

    [Fact]
    public async Task The_plan_shows_stages_steps_kinds_dependencies_and_pruning()
    {
        var result = await FarmCli.RunAsync("debug", "plan", "--build-arg", "VERSION=2", "--build-arg", "UNUSED=1", _context);

        Assert.Equal(0, result.ExitCode);
        using var plan = JsonDocument.Parse(result.Stdout);
        var stages = plan.RootElement.GetProperty("stages").EnumerateArray().ToList();
        Assert.Equal(3, stages.Count);
        Assert.True(stages[1].GetProperty("pruned").GetBoolean());
        Assert.Equal([0], stages[2].GetProperty("dependencies").EnumerateArray().Select(d => d.GetInt32()));
        Assert.Equal("busybox", stages[2].GetProperty("baseImage").GetString());

        var run = stages[0].GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("instruction").GetString() == "RUN");
        Assert.Equal("layer", run.GetProperty("kind").GetString());
        Assert.Contains("VERSION", run.GetProperty("usedArgs").EnumerateArray().Select(a => a.GetString()));
        var cmd = stages[2].GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("instruction").GetString() == "CMD");
        Assert.Equal("config", cmd.GetProperty("kind").GetString());

        Assert.Contains("UNUSED", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SOURCE_DATE_EPOCH_is_a_predefined_arg_that_changes_the_layer_keys_as_the_coordinators_do()
    {
        static List<string?> Keys(string stdout)
        {
            using var plan = JsonDocument.Parse(stdout);
            return [.. plan.RootElement.GetProperty("stages").EnumerateArray().SelectMany(s => s.GetProperty("steps").EnumerateArray())
                .Where(s => s.TryGetProperty("cacheKey", out _)).Select(s => s.GetProperty("cacheKey").GetString())];
        }

        var plain = await FarmCli.RunAsync("debug", "plan", _context);
        var dated = await FarmCli.RunAsync("debug", "plan", "--build-arg", "SOURCE_DATE_EPOCH=1700000000", _context);
        var bad = await FarmCli.RunAsync("debug", "plan", "--build-arg", "SOURCE_DATE_EPOCH=yesterday", _context);

        Assert.Equal((0, 0), (plain.ExitCode, dated.ExitCode));
        Assert.DoesNotContain("SOURCE_DATE_EPOCH", dated.Stderr, StringComparison.Ordinal);
        var (before, after) = (Keys(plain.Stdout), Keys(dated.Stdout));
        Assert.Equal(before.Count, after.Count);
        Assert.NotEmpty(before);
        Assert.All(before.Zip(after), p => Assert.NotEqual(p.First, p.Second));
        Assert.Contains("FARM1320", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_target_fails_with_the_stage_names()
    {
        var result = await FarmCli.RunAsync("debug", "plan", "--target", "nope", _context);

        Assert.Equal(1, result.ExitCode);
        Assert.Matches("^farm: FARM13\\d\\d: .*'nope'.*build, unused", result.Stderr.Trim());
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }
}
