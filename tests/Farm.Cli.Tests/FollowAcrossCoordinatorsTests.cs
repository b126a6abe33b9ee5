using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// Following a build from any coordinator of a cluster, and through the death of the coordinator a client follows
/// on (docs/architecture.md, "Failure model"): coordinators, worker and CLI run as processes.
/// </summary>
public sealed class FollowAcrossCoordinatorsTests(FarmClusterProcessesFixture farm) : IClassFixture<FarmClusterProcessesFixture>
{
    private string Context(string marker, int sleepSeconds)
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + marker)).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            COPY msg.txt /msg.txt
            RUN echo started-{marker} && sleep {sleepSeconds} && echo done-{marker}
            CMD ["cat", "/msg.txt"]
            """);
        File.WriteAllText(Path.Combine(dir, "msg.txt"), $"built across coordinators {marker}\n");
        return dir;
    }

    /// <summary>A rawjson line of the step's output line <paramref name="text"/> (the RUN's display holds the words too).</summary>
    private static bool IsLog(string line, string text) =>
        line.StartsWith("{\"type\":\"StepLog\"", StringComparison.Ordinal) && line.Contains($"\"line\":\"{text}\"", StringComparison.Ordinal);

    private static List<long> Seqs(IEnumerable<string> lines) => [.. lines.Select(l => (long)JsonNode.Parse(l)!["seq"]!)];

    [Fact]
    public async Task Following_a_build_on_a_coordinator_that_does_not_run_it_streams_its_events_live_and_ends_with_the_build()
    {
        await using var coordinators = await farm.StartCoordinatorsAsync(2);
        var (runner, other) = (coordinators[0], coordinators[1]);
        var marker = Guid.NewGuid().ToString("N")[..10];

        // The build is submitted to the first coordinator, which runs it.
        using var cli = RunningCli.Start(farm.Env, "build", "--farm", runner.Url, "--progress", "rawjson", Context(marker, sleepSeconds: 6));
        Guid id = default;
        await Wait.UntilAsync(() => cli.Stdout.Any(l => l.Contains("\"buildId\"", StringComparison.Ordinal) && Guid.TryParse((string?)JsonNode.Parse(l)!["buildId"], out id)),
            TimeSpan.FromMinutes(2), () => $"the build's first event on the CLI{Environment.NewLine}{cli}{farm.Diagnostics()}");

        // Followed on the other one: every event from the first, live, and the stream ends by itself with the build.
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var response = await http.GetAsync(new Uri($"{other.Url}/builds/{id}/events?follow=true"), HttpCompletionOption.ResponseHeadersRead);
        Assert.True(response.IsSuccessStatusCode, $"{other.Url} answered {(int)response.StatusCode}{farm.Diagnostics()}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var lines = new List<string>();
        string? statusWhenStarted = null;
        using (var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3)))
        {
            try
            {
                while (await reader.ReadLineAsync(timeout.Token) is { } line)
                {
                    lines.Add(line);
                    if (IsLog(line, "started-" + marker))
                    {
                        statusWhenStarted = (string?)JsonNode.Parse(await http.GetStringAsync(new Uri($"{runner.Url}/builds/{id}")))!["status"];
                    }
                }
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"the follow on the other coordinator did not end within 3 minutes; it sent:{Environment.NewLine}{string.Join(Environment.NewLine, lines)}{farm.Diagnostics()}");
            }
        }

        Assert.Equal(0, await cli.ExitCodeAsync(TimeSpan.FromMinutes(2), farm.Diagnostics));
        Assert.StartsWith("{\"type\":\"BuildFinished\"", lines[^1], StringComparison.Ordinal);
        // The step's first line came while the build still ran on the first coordinator, before its last line.
        Assert.Equal("running", statusWhenStarted);
        Assert.True(lines.FindIndex(l => IsLog(l, "started-" + marker)) < lines.FindIndex(l => IsLog(l, "done-" + marker)), string.Join(Environment.NewLine, lines));
        // Numbered 1, 2, 3, ...: the same events, with the same numbers, as the coordinator that ran the build has.
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), Seqs(lines));
        var onRunner = (await http.GetStringAsync(new Uri($"{runner.Url}/builds/{id}/events"))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(onRunner, lines);
        // A follower that saw event 3 gets the rest, from 4.
        var after = (await http.GetStringAsync(new Uri($"{other.Url}/builds/{id}/events?follow=true&after=3"))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines.Skip(3), after);
    }

    [Fact]
    public async Task A_cli_following_a_build_goes_on_on_another_coordinator_when_its_own_is_killed_and_prints_the_builds_end()
    {
        await using var coordinators = await farm.StartCoordinatorsAsync(2);
        var (first, second) = (coordinators[0], coordinators[1]);
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/follow:{marker}";

        // Submitted to the first coordinator named, which runs the build and streams it to the CLI.
        using var cli = RunningCli.Start(farm.Env, "build", "--farm", $"{first.Url},{second.Url}", "--progress", "rawjson", "--push", "-t", image, Context(marker, sleepSeconds: 10));
        await Wait.UntilAsync(() => cli.Stdout.Any(l => IsLog(l, "started-" + marker)), TimeSpan.FromMinutes(3),
            () => $"the RUN step to print started-{marker}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        // A second client follows the build's step output (farm logs -f) on the same coordinator.
        var id = (string)JsonNode.Parse(cli.Stdout.First(l => l.Contains("\"buildId\"", StringComparison.Ordinal)))!["buildId"]!;
        using var logs = RunningCli.Start(farm.Env, "logs", "-f", "--farm", $"{first.Url},{second.Url}", id);
        await Wait.UntilAsync(() => logs.Stdout.Any(l => l.EndsWith("] started-" + marker, StringComparison.Ordinal)), TimeSpan.FromMinutes(1),
            () => $"farm logs -f to print started-{marker}{Environment.NewLine}{logs}{farm.Diagnostics()}");
        await first.KillAsync();

        // The second coordinator resumes the build; the CLI follows it there to its end.
        var exit = await cli.ExitCodeAsync(TimeSpan.FromMinutes(6), farm.Diagnostics);
        Assert.True(exit == 0, $"farm exited {exit}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        var notice = Assert.Single(cli.Stderr, l => l.StartsWith("farm: lost ", StringComparison.Ordinal));
        Assert.Contains($"farm: lost {first.Url} (", notice, StringComparison.Ordinal);
        Assert.Contains($"on {second.Url} after event ", notice, StringComparison.Ordinal);

        // Every event of the farm once, in order, none missing (the CLI's own ContextPacked comes first, unnumbered);
        // the end is the second coordinator's.
        var lines = cli.Stdout.ToList();
        Assert.StartsWith("{\"type\":\"ContextPacked\"", lines[0], StringComparison.Ordinal);
        lines.RemoveAt(0);
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), Seqs(lines));
        Assert.Single(lines, l => l.StartsWith("{\"type\":\"BuildResumed\"", StringComparison.Ordinal));
        Assert.StartsWith("{\"type\":\"BuildFinished\"", lines[^1], StringComparison.Ordinal);
        Assert.Contains(image, lines[^1], StringComparison.Ordinal);
        // farm logs -f went on on the second coordinator too and ended with the build, its lines exactly the step output
        // events the build's own client saw (a step redone after the takeover prints its lines again, as new events).
        Assert.Equal(0, await logs.ExitCodeAsync(TimeSpan.FromMinutes(1), farm.Diagnostics));
        Assert.Contains(logs.Stderr, l => l.StartsWith($"farm: lost {first.Url} (", StringComparison.Ordinal) && l.Contains($"on {second.Url} after event ", StringComparison.Ordinal));
        var stepLines = lines.Where(l => l.StartsWith("{\"type\":\"StepLog\"", StringComparison.Ordinal))
            .Select(l => JsonNode.Parse(l)!["line"]!).Select(l => $"[{(string)l["stepId"]!}] {(string)l["line"]!}");
        Assert.Equal(stepLines, logs.Stdout);
        Assert.Contains(logs.Stdout, l => l.EndsWith("] started-" + marker, StringComparison.Ordinal));

        Assert.Equal($"built across coordinators {marker}\n", await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image));
        await Tool.RunAsync("podman", "rmi", "-f", image);
    }
}
