using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>farm system df</c> and <c>farm system prune</c> on the local farm daemon, and its build cache cap
/// (<c>Farm:Builds:CacheMaxBytes</c>), run as a user runs them: real builds through the daemon, then what the next
/// build does (its steps run again, or come CACHED) and whether the images still export.
/// </summary>
public sealed class SystemCommandTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    /// <summary>A two-stage build: the first stage's RUN writes 200 kB only the cache holds (the image copies one small file).</summary>
    private string Context(string marker) => fixture.Context(("Dockerfile", $"""
        FROM {BuildFixture.Base} AS scratchpad
        RUN echo "ran-{marker}-1" && head -c 200000 /dev/urandom > /big && echo small > /small

        FROM {BuildFixture.Base}
        COPY --from=scratchpad /small /small
        RUN echo "ran-{marker}-2" && echo {marker} > /marker
        CMD ["cat", "/marker"]
        """));

    [Fact]
    public async Task Df_counts_a_build_and_prune_removes_the_cache_so_the_next_build_runs_its_steps_while_the_image_still_exports()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var context = Context(marker);
        var before = await DfAsync(fixture.Env);
        var first = Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"pruned-{marker}:1", context));
        Assert.True(Ran(first, marker, "1"), first.ToString());

        var after = await DfAsync(fixture.Env);
        var cache = after["buildCache"]!;
        Assert.True((long)cache["entries"]! > (long)before["buildCache"]!["entries"]!, after.ToJsonString());
        Assert.True((long)cache["bytes"]! >= (long)before["buildCache"]!["bytes"]! + 200_000, after.ToJsonString());
        // The scratch stage's 200 kB layer is in no image: prune can reclaim it.
        Assert.True((long)cache["reclaimable"]! >= 200_000, after.ToJsonString());
        Assert.True((long)after["images"]!["count"]! >= 2, after.ToJsonString());

        var table = Ok(await fixture.Farm("system", "df"));
        Assert.Matches(new Regex(@"^TYPE\s+TOTAL\s+SIZE\s+RECLAIMABLE$", RegexOptions.Multiline), table.Stdout);
        Assert.Matches(new Regex(@"^Build Cache\s+\d+\s+\S+B\s+\S+B$", RegexOptions.Multiline), table.Stdout);

        var pruned = Ok(await fixture.Farm("system", "prune", "-f"));
        var removed = Regex.Match(pruned.Stdout, @"Deleted build cache entries: (\d+)");
        Assert.True(removed.Success && int.Parse(removed.Groups[1].Value) > 0, pruned.ToString());
        Assert.Matches(new Regex(@"Total reclaimed space: (\d+(\.\d+)?kB|\d+(\.\d+)?MB)"), pruned.Stdout);
        var empty = await DfAsync(fixture.Env);
        Assert.Equal(0L, (long)empty["buildCache"]!["entries"]!);
        Assert.Equal(0L, (long)empty["buildCache"]!["bytes"]!);

        // The image keeps every blob it needs: it still exports whole.
        var archive = Path.Combine(fixture.Directory, $"pruned-{marker}.tar");
        Ok(await fixture.Farm("save", "-o", archive, $"pruned-{marker}:1"));
        Assert.True(new FileInfo(archive).Length > 0);

        var again = Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"pruned-{marker}:1", context));
        Assert.True(Ran(again, marker, "1"), again.ToString());
        Assert.True(Ran(again, marker, "2"), again.ToString());
    }

    [Fact]
    public async Task Prune_without_force_asks_and_does_nothing_unless_told_yes()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var context = Context(marker);
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"asked-{marker}:1", context));
        var entries = (long)(await DfAsync(fixture.Env))["buildCache"]!["entries"]!;

        var declined = Ok(await FarmCli.RunAsync(fixture.Env, "n\n", "system", "prune"));
        Assert.Contains("Are you sure you want to continue? [y/N]", declined.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Deleted build cache entries", declined.Stdout, StringComparison.Ordinal);
        Assert.Equal(entries, (long)(await DfAsync(fixture.Env))["buildCache"]!["entries"]!);

        var bad = await fixture.Farm("system", "prune", "-f", "--filter", "label=x");
        Assert.True(bad.ExitCode != 0 && bad.Stderr.Contains("FARM5055", StringComparison.Ordinal), bad.ToString());
    }

    [Fact]
    public async Task Prune_filter_until_keeps_the_entries_used_recently()
    {
        var old = Guid.NewGuid().ToString("N")[..8];
        var recent = Guid.NewGuid().ToString("N")[..8];
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"old-{old}:1", Context(old)));

        // Two days pass for every entry there is now; the next build then uses its own entries only.
        var twoDaysAgo = DateTime.UtcNow - TimeSpan.FromDays(2);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(fixture.Env["FARM_STATE_DIR"], "action-cache"), "*.json", SearchOption.AllDirectories))
        {
            File.SetLastWriteTimeUtc(file, twoDaysAgo);
        }

        Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"recent-{recent}:1", Context(recent)));
        var pruned = Ok(await fixture.Farm("system", "prune", "-f", "--filter", "until=24h"));
        Assert.Matches(new Regex(@"Deleted build cache entries: [1-9]\d*"), pruned.Stdout);

        var recentAgain = Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"recent-{recent}:1", Context(recent)));
        Assert.Equal(3, Regex.Count(recentAgain.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
        Assert.False(Ran(recentAgain, recent, "\\d"), recentAgain.ToString());
        var oldAgain = Ok(await fixture.Farm("build", "--progress", "plain", "-t", $"old-{old}:1", Context(old)));
        Assert.True(Ran(oldAgain, old, "1"), oldAgain.ToString());
    }

    [Fact]
    public async Task The_local_farm_refuses_to_prune_while_a_build_runs_on_it()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var context = fixture.Context(("Dockerfile", $"FROM {BuildFixture.Base}\nRUN echo started-{marker} && sleep 600\n"));
        var build = fixture.Farm("build", "--progress", "plain", context);
        try
        {
            await Wait.UntilAsync(
                async () => await fixture.Farm("daemon", "status") is { ExitCode: 0 } status && (long?)JsonNode.Parse(status.Stdout)?["running"] > 0,
                TimeSpan.FromSeconds(60),
                () => "the daemon to report the build as running");

            var refused = await fixture.Farm("system", "prune", "-f");
            Assert.True(refused.ExitCode != 0 && refused.Stderr.Contains("FARM4277", StringComparison.Ordinal), refused.ToString());
        }
        finally
        {
            await CancelRunningBuildsAsync();
        }

        var cancelled = await build;
        Assert.True(cancelled.ExitCode != 0 && cancelled.Stderr.Contains("FARM4215", StringComparison.Ordinal), cancelled.ToString());
    }

    [Fact]
    public async Task The_cache_cap_evicts_the_least_recently_used_entries_after_a_build()
    {
        // A daemon of its own, started with the cap: 300 kB holds one build's 200 kB layer, not two.
        var env = fixture.Env;
        env["FARM_STATE_DIR"] = Path.Combine(fixture.Directory, "state-capped");
        env["Farm__Builds__CacheMaxBytes"] = "300000";
        try
        {
            Ok(await FarmCli.RunAsync(env, null, "import", "-c", "CMD [\"sh\"]", BuildFixture.BusyboxRootfs(fixture.Directory), BuildFixture.Base));
            var first = Guid.NewGuid().ToString("N")[..8];
            var second = Guid.NewGuid().ToString("N")[..8];
            Ok(await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "-t", $"first-{first}:1", Context(first)));
            Ok(await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "-t", $"second-{second}:1", Context(second)));

            JsonNode usage = new JsonObject();
            await Wait.UntilAsync(
                async () => (long)(usage = await DfAsync(env))["buildCache"]!["bytes"]! <= 300_000,
                TimeSpan.FromSeconds(60),
                () => $"the build cache to shrink under its cap of 300000 bytes after the second build; df says {usage.ToJsonString()}");

            // The second build used its entries last: they stay; the first build's were evicted.
            var secondAgain = Ok(await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "-t", $"second-{second}:1", Context(second)));
            Assert.Equal(3, Regex.Count(secondAgain.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
            Assert.False(Ran(secondAgain, second, "\\d"), secondAgain.ToString());
            var firstAgain = Ok(await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "-t", $"first-{first}:1", Context(first)));
            Assert.True(Ran(firstAgain, first, "1"), firstAgain.ToString());
        }
        finally
        {
            await FarmCli.RunAsync(env, null, "daemon", "stop");
        }
    }

    /// <summary>Whether RUN step <paramref name="step"/> of the build ran (its output, not its instruction, is on stderr).</summary>
    private static bool Ran(CliProcess.Result build, string marker, string step) =>
        Regex.IsMatch(build.Stderr, $@"^#\d+ \d+\.\d{{3}} ran-{marker}-{step}$", RegexOptions.Multiline);

    /// <summary>Cancels the daemon's running builds through its API (as Ctrl-C on farm build does).</summary>
    private async Task CancelRunningBuildsAsync()
    {
        var socket = Path.Combine(fixture.Env["FARM_STATE_DIR"], "farmd.sock");
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket), ct);
                return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
            },
        })
        { BaseAddress = new Uri("http://farmd/"), Timeout = TimeSpan.FromSeconds(30) };
        var builds = JsonNode.Parse(await http.GetStringAsync("api/builds"))!.AsArray();
        foreach (var running in builds.Where(b => (string?)b!["status"] is "running" or "queued"))
        {
            using var response = await http.PostAsync($"builds/{(string)running!["buildId"]!}/cancel", null);
        }
    }

    private static async Task<JsonNode> DfAsync(Dictionary<string, string> env)
    {
        var df = Ok(await FarmCli.RunAsync(env, null, "system", "df", "--format", "json"));
        return JsonNode.Parse(df.Stdout)!;
    }

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}
