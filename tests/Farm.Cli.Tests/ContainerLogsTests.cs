using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary><c>farm logs --tail</c> of a container, against real runc.</summary>
public sealed class ContainerLogsTests(ContainerFixture farm) : IClassFixture<ContainerFixture>
{
    [Fact]
    public async Task Tail_shows_only_the_last_lines_of_a_containers_output()
    {
        var name = "tailer-" + Guid.NewGuid().ToString("N")[..8];
        await farm.Ok("run", "--name", name, "bb", "sh", "-c", "i=1; while [ $i -le 500 ]; do echo line-$i; i=$((i+1)); done; printf unterminated");

        Assert.Equal("line-499\nline-500\nunterminated", await farm.Ok("logs", "--tail", "3", name));
        Assert.Equal("unterminated", await farm.Ok("logs", "-n", "1", name));
        Assert.Equal("", await farm.Ok("logs", "--tail", "0", name));
        var all = await farm.Ok("logs", "--tail", "all", name);
        Assert.StartsWith("line-1\nline-2\n", all, StringComparison.Ordinal);
        Assert.Equal(all, await farm.Ok("logs", "--tail", "100000", name));
        Assert.Equal(all, await farm.Ok("logs", name));

        var refused = await farm.Farm("logs", "--tail", "many", name);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("farm: FARM5010: ", refused.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Timestamps_date_each_line_and_since_keeps_the_lines_written_from_then_on()
    {
        var name = "dated-" + Guid.NewGuid().ToString("N")[..8];
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        await farm.Ok("run", "--name", name, "bb", "sh", "-c", "echo one; echo two");
        var between = DateTimeOffset.UtcNow;

        // Run again: its lines are appended to the same log, written after `between`.
        await farm.Ok("start", name);
        await Wait.UntilAsync(async () => (await farm.Ok("logs", name)) == "one\ntwo\none\ntwo\n", TimeSpan.FromMinutes(2), () => "the second run's output in the log");
        var after = DateTimeOffset.UtcNow.AddSeconds(1);

        var stamped = (await farm.Ok("logs", "--timestamps", name)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, stamped.Length);
        var times = stamped.Select(l => DateTimeOffset.Parse(l[..l.IndexOf(' ', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.All(stamped, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (one|two)$", l));
        Assert.Equal(["one", "two", "one", "two"], stamped.Select(l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..]));
        Assert.All(times.Take(2), t => Assert.InRange(t, before, between));
        Assert.All(times.Skip(2), t => Assert.InRange(t, between, after));

        // RFC 3339, Unix seconds with a fraction, a duration back from now, a date: as docker reads them.
        var rfc = between.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var unix = (between.ToUnixTimeMilliseconds() / 1000.0).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("one\ntwo\n", await farm.Ok("logs", "--since", rfc, name));
        Assert.Equal("one\ntwo\n", await farm.Ok("logs", "--since", unix, name));
        Assert.Equal("one\ntwo\none\ntwo\n", await farm.Ok("logs", "--since", "10m", name));
        Assert.Equal(string.Empty, await farm.Ok("logs", "--since", after.AddMinutes(5).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), name));
        Assert.Equal("one\ntwo\none\ntwo\n", await farm.Ok("logs", "--since", before.AddDays(-1).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), name));
        Assert.Equal(stamped[^1] + "\n", await farm.Ok("logs", "-t", "--tail", "1", name));

        var refused = await farm.Farm("logs", "--since", "yesterday", name);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("farm: FARM5010: --since yesterday is not a time", refused.Stderr, StringComparison.Ordinal);
    }
}
