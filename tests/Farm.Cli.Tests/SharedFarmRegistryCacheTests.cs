using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>--cache-to</c> and <c>--cache-from</c> between a shared farm (coordinator and worker processes, HTTPS, tokens,
/// a tenant's RabbitMQ user) and a local farm daemon on a fresh state directory (a laptop: its own action cache, no
/// Redis, nothing in common with the farm but the registry), through <c>farm build --farm</c> and <c>farm submit</c>.
/// </summary>
public sealed class SharedFarmRegistryCacheTests(SharedFarmFixture farm) : IClassFixture<SharedFarmFixture>, IAsyncLifetime
{
    private readonly List<Dictionary<string, string>> _laptops = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var laptop in _laptops)
        {
            await FarmCli.RunAsync(laptop, null, "daemon", "stop");
        }
    }

    [Fact]
    public async Task A_laptop_reuses_the_cache_a_tenants_build_on_the_farm_exported()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var context = Context(marker);
        var cache = $"{farm.Repository}/cache:{marker}";

        var onFarm = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", "--cache-to", $"type=registry,ref={cache},mode=max", context);

        Assert.True(onFarm.ExitCode == 0, onFarm + farm.Diagnostics());
        Assert.Matches(@"writing cache manifest sha256:[0-9a-f]{64}: 2 entries, 2 layers", onFarm.Stderr);
        Assert.True(Printed(onFarm, $"ran {marker}"), onFarm.ToString());
        var laptop = await FarmCli.RunAsync(Laptop(), null, "build", "--progress", "plain", "--cache-from", $"type=registry,ref={cache}", context);

        Assert.True(laptop.ExitCode == 0, laptop.ToString());
        Assert.Equal(2, Regex.Count(laptop.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
        Assert.False(Printed(laptop, $"ran {marker}"), laptop.ToString());
        Assert.Equal(Digest(onFarm), Digest(laptop));
    }

    [Fact]
    public async Task A_queued_build_is_seeded_from_the_cache_a_laptop_exported()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var context = Context(marker);
        var cache = $"{farm.Repository}/cache:{marker}";
        var laptop = await FarmCli.RunAsync(Laptop(), null, "build", "--progress", "plain", "--cache-to", $"type=registry,ref={cache}", context);
        Assert.True(laptop.ExitCode == 0, laptop.ToString());
        Assert.True(Printed(laptop, $"ran {marker}"), laptop.ToString());
        var env = farm.Env(farm.AcmeToken);
        env["FARM_RABBITMQ"] = farm.AcmeAmqpUrl;

        var queued = await FarmCli.RunAsync(env, null, "submit", "--wait", "--progress", "plain", "--cache-from", cache, "--cache-from", $"{farm.Repository}/cache:missing-{marker}", context);

        Assert.True(queued.ExitCode == 0, queued + farm.Diagnostics());
        Assert.Contains($"importing cache manifest from {cache}", queued.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"#\d+ WARNING: FARM4350: ", queued.Stderr);
        Assert.Equal(2, Regex.Count(queued.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
        Assert.False(Printed(queued, $"ran {marker}"), queued.ToString());
        Assert.Equal(Digest(laptop), Digest(queued));
    }

    [Fact]
    public async Task A_bad_cache_option_in_a_posted_submission_is_refused_with_400()
    {
        using var acme = farm.Http(farm.AcmeToken);
        using var body = new StringContent(
            """{"dockerfile":"FROM scratch\n","contextDigest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","options":{"cacheTo":["type=local,dest=/tmp/x"]}}""",
            System.Text.Encoding.UTF8,
            "application/json");

        using var response = await acme.PostAsync("builds", body);

        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("FARM2261", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>A laptop: the local farm daemon on a state directory of its own, no farm address.</summary>
    private Dictionary<string, string> Laptop()
    {
        var env = farm.Env(null);
        env["FARM_HOST"] = string.Empty;
        env["FARM_STATE_DIR"] = Path.Combine(farm.Directory, "laptop-" + Guid.NewGuid().ToString("N")[..8]);
        _laptops.Add(env);
        return env;
    }

    private string Context(string marker)
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            COPY msg.txt /msg.txt
            RUN echo "ran {marker}" && date +%s%N > /stamp
            """);
        File.WriteAllText(Path.Combine(dir, "msg.txt"), $"{marker}\n");
        return dir;
    }

    private static bool Printed(CliProcess.Result build, string line) =>
        Regex.IsMatch(build.Stderr, $@"^#\d+ \d+\.\d{{3}} {Regex.Escape(line)}$", RegexOptions.Multiline);

    private static string Digest(CliProcess.Result build) =>
        Regex.Match(build.Stderr, @"writing image (sha256:[0-9a-f]{64})") is { Success: true } m ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException("no image digest in " + build);
}
