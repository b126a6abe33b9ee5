using System.Globalization;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>farm logs --since</c> and <c>-t</c> for a build's output on the local farm daemon (no <c>--farm</c>, no
/// <c>FARM_HOST</c>); <see cref="RemoteBuildTests"/> runs the same checks through a coordinator process.
/// </summary>
public sealed class BuildLogsTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    [Fact]
    public async Task Build_logs_on_the_local_farm_print_times_and_keep_the_lines_since_a_time()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var built = await fixture.Farm("build", "--progress", "rawjson", fixture.Context(("Dockerfile", BuildLogTimes.Dockerfile(BuildFixture.Base, marker))));
        Assert.True(built.ExitCode == 0, built.ToString());

        await BuildLogTimes.CheckAsync(fixture.Farm, BuildLogTimes.Id(built), marker);
    }
}

/// <summary>
/// What <c>farm logs --since</c> and <c>-t</c> do to a build's output, wherever it ran: a build of two RUN steps, the
/// second after the first, so every line of the second is later than every line of the first.
/// </summary>
internal static class BuildLogTimes
{
    public static string Dockerfile(string baseImage, string marker) =>
        $"FROM {baseImage}\nRUN echo {marker}-a1 && echo {marker}-a2\nRUN echo {marker}-b1 && echo {marker}-b2\n";

    public static string Id(CliProcess.Result build) =>
        build.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Select(e => (string?)e["buildId"]).First(b => b is not null)!;

    public static async Task CheckAsync(Func<string[], Task<CliProcess.Result>> farm, string id, string marker)
    {
        var plain = Ok(await farm(["logs", id]));
        var stamped = Ok(await farm(["logs", "-t", id])).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        // Every line after its time (RFC 3339, UTC, nanoseconds), in the order of the plain log.
        Assert.All(stamped, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \[s\d+/\d+\] ", l));
        Assert.Equal(plain, string.Join("\n", stamped.Select(Text)) + "\n");
        var mine = stamped.Where(l => l.Contains(marker, StringComparison.Ordinal)).ToList();
        Assert.Equal(4, mine.Count);
        var second = mine.Where(l => l.Contains($"{marker}-b", StringComparison.Ordinal)).ToList();
        var from = second.Select(Time).Min();
        Assert.All(mine.Except(second), l => Assert.True(Time(l) < from, $"{l} is not before the second step's lines"));

        // --since as -t prints a time, as a Unix timestamp with a fraction, a duration back from now, a time to come.
        var since = stamped.Where(l => Time(l) >= from).Select(l => l + "\n").ToList();
        var fromStamp = Stamp(mine.First(l => Time(l) == from));
        var sinceText = string.Concat(since.Select(Text));
        Assert.Equal(sinceText, Ok(await farm(["logs", "--since", fromStamp, id])));
        var unix = (from.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks).ToString(CultureInfo.InvariantCulture);
        Assert.Equal(sinceText, Ok(await farm(["logs", "--since", unix[..^7] + "." + unix[^7..], id])));
        Assert.Equal(plain, Ok(await farm(["logs", "--since", "1h", id])));
        Assert.Equal(string.Empty, Ok(await farm(["logs", "--since", DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), id])));

        // With --tail (counted among the lines kept), -t and -f: the ended build's lines, as without -f.
        Assert.Equal(string.Concat(since.TakeLast(1)), Ok(await farm(["logs", "-t", "--since", fromStamp, "--tail", "1", id])));
        Assert.Equal(string.Concat(since), Ok(await farm(["logs", "-f", "-t", "--since", fromStamp, id])));

        var refused = await farm(["logs", "--since", "yesterday", id]);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("farm: FARM5010: --since yesterday is not a time", refused.Stderr, StringComparison.Ordinal);
    }

    private static string Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Stdout;
    }

    private static string Stamp(string line) => line[..line.IndexOf(' ', StringComparison.Ordinal)];

    private static string Text(string line) => line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..];

    private static DateTimeOffset Time(string line) => DateTimeOffset.Parse(Stamp(line), CultureInfo.InvariantCulture);
}
