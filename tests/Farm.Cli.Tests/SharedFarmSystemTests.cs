using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>farm system df</c> and <c>farm system prune --farm URL</c> on a shared farm (a coordinator and a worker process,
/// HTTPS and tokens, <see cref="SharedFarmFixture"/>; its own, since a prune empties the farm's whole cache): any role
/// sees the usage, only an admin token prunes.
/// </summary>
public sealed class SharedFarmSystemTests(SharedFarmFixture farm) : IClassFixture<SharedFarmFixture>
{
    [Fact]
    public async Task Any_token_sees_the_cache_usage_and_only_an_admin_token_prunes_it_after_which_the_step_runs_again()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var context = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + marker)).FullName;
        File.WriteAllText(Path.Combine(context, "Dockerfile"), $"""
            FROM {farm.Base}
            RUN echo "ran-{marker}" && echo {marker} > /marker
            """);
        var built = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", context);
        Assert.True(built.ExitCode == 0 && Ran(built, marker), built + farm.Diagnostics());

        var df = await FarmCli.RunAsync(farm.Env(farm.AcmeReadToken), null, "system", "df", "--format", "json");
        Assert.True(df.ExitCode == 0, df.ToString());
        var usage = JsonNode.Parse(df.Stdout)!;
        Assert.True((long)usage["buildCache"]!["entries"]! > 0, df.Stdout);
        Assert.Null(usage["images"]);
        Assert.StartsWith("registry://", (string)usage["cacheStore"]!, StringComparison.Ordinal);

        var refused = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "system", "prune", "-f");
        Assert.True(refused.ExitCode != 0 && refused.Stderr.Contains("FARM5030", StringComparison.Ordinal) && refused.Stderr.Contains("FARM4275", StringComparison.Ordinal), refused.ToString());
        using (var reader = farm.Http(farm.AcmeReadToken))
        {
            using var response = await reader.PostAsync("system/prune", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("FARM4275", (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["code"]);
        }

        var stillCached = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", context);
        Assert.True(stillCached.ExitCode == 0 && !Ran(stillCached, marker), stillCached.ToString());

        var pruned = await FarmCli.RunAsync(farm.Env(farm.AdminToken), null, "system", "prune", "-f");
        Assert.True(pruned.ExitCode == 0, pruned.ToString());
        Assert.Matches(new Regex(@"Deleted build cache entries: [1-9]\d*"), pruned.Stdout);
        Assert.Contains("stay in its registry until the registry's garbage collection runs", pruned.Stdout, StringComparison.Ordinal);
        var after = JsonNode.Parse((await FarmCli.RunAsync(farm.Env(farm.AcmeReadToken), null, "system", "df", "--format", "json")).Stdout)!;
        Assert.Equal(0L, (long)after["buildCache"]!["entries"]!);

        var again = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", context);
        Assert.True(again.ExitCode == 0 && Ran(again, marker), again + farm.Diagnostics());
    }

    private static bool Ran(CliProcess.Result build, string marker) =>
        Regex.IsMatch(build.Stderr, $@"^#\d+ \d+\.\d{{3}} ran-{marker}$", RegexOptions.Multiline);
}
