using System.Text;
using System.Text.Json.Nodes;
using Farm.Testing;
using StackExchange.Redis;

namespace Farm.Cli.Tests;

/// <summary>
/// A shared farm as processes (a coordinator with tokens for tenants <c>acme</c> and <c>globex</c>, its grain state,
/// event streams, action cache and key input history in a Redis of the fixture's own, and a worker), for why a step
/// ran where tenants share it: the lineage is per tenant, a tenant sees only its own builds' explanations, and a
/// build arg's value is in no event and no Redis key the explanation uses.
/// </summary>
public sealed class SharedFarmExplainFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;
    private RedisServer? _redis;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-explain-").FullName;

    public string Base => $"{TestRegistries.Anonymous}/{_repository}/busybox:1";

    public RedisServer Redis => _redis!;

    public string AcmeToken { get; private set; } = string.Empty;

    public string GlobexToken { get; private set; } = string.Empty;

    public Dictionary<string, string> Env(string? token) => new(FarmCli.ClientEnv(Directory, _coordinator?.Url))
    {
        ["FARM_TOKEN"] = token ?? string.Empty,
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-explain-");
        _redis = await RedisServer.StartAsync();
        (AcmeToken, var acme) = await CoordinatorProcess.MintTokenAsync("acme");
        (GlobexToken, var globex) = await CoordinatorProcess.MintTokenAsync("globex");
        var tokensFile = Path.Combine(Directory, "tokens");
        await File.WriteAllLinesAsync(tokensFile, [acme, globex]);
        var cluster = "farm-explain-" + Guid.NewGuid().ToString("N")[..10];
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{TestRegistries.Anonymous}/{_repository}/cache", Path.Combine(Directory, "coordinator"), new Dictionary<string, string>
        {
            ["Farm__Coordinator__Auth__TokensFile"] = tokensFile,
            ["Farm__Coordinator__Redis"] = _redis.Configuration,
            ["Farm__Coordinator__ClusterId"] = cluster,
            ["Farm__Coordinator__ServiceId"] = cluster,
            ["Logging__LogLevel__Default"] = "Debug",
        });
        _worker = WorkerProcess.Start("explain-worker", Path.Combine(Directory, "w"), _vhost.Name);
        Ok(await FarmCli.RunAsync(Env(null), null, "import", BuildFixture.BusyboxRootfs(Directory), Base));
        Ok(await FarmCli.RunAsync(Env(null), null, "push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());
    }

    public string CoordinatorOutput() => _coordinator?.OutputTail() ?? string.Empty;

    public string Diagnostics() => Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), ("worker", _worker?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_worker, _coordinator, _vhost, _redis);
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    internal static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}

public sealed class SharedFarmExplainTests(SharedFarmExplainFixture farm) : IClassFixture<SharedFarmExplainFixture>
{
    [Fact]
    public async Task Lineages_are_per_tenant_explanations_are_the_tenants_own_and_a_build_args_value_is_in_no_event_or_Redis_key()
    {
        var context = System.IO.Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(context, "Dockerfile"), $"FROM {farm.Base}\nARG TOKEN=none\nRUN test -n \"$TOKEN\" && touch /built\n");
        var tag = $"{TestRegistries.Anonymous}/t{Guid.NewGuid():N}/app:1";
        string[] values = ["first-" + Guid.NewGuid().ToString("N"), "second-" + Guid.NewGuid().ToString("N"), "third-" + Guid.NewGuid().ToString("N"), "dry-" + Guid.NewGuid().ToString("N")];

        var first = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "rawjson", "--build-arg", $"TOKEN={values[0]}", "-t", tag, context));
        Assert.Equal("never-built", Explanation(first.Stdout)!["reasons"]![0]!["kind"]!.GetValue<string>());
        var second = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", "--build-arg", $"TOKEN={values[1]}", "-t", tag, context));
        Assert.Contains("rebuilt: build arg TOKEN changed\n", second.Stderr, StringComparison.Ordinal);

        // A dry run on the farm: the context uploaded, the step keyed and looked up, nothing run.
        var dryCached = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--dry-run", "--progress", "plain", "--build-arg", $"TOKEN={values[1]}", "-t", tag, context));
        Assert.Contains("#1 CACHED\ndry run: 0 of 1 layer steps would run", dryCached.Stdout, StringComparison.Ordinal);
        var dryMiss = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--dry-run", "--progress", "plain", "--build-arg", $"TOKEN={values[3]}", "-t", tag, context));
        Assert.Contains("#1 would run: build arg TOKEN changed\ndry run: 1 of 1 layer steps would run", dryMiss.Stdout, StringComparison.Ordinal);

        // Globex builds the same Dockerfile under the same tag: acme's builds are not its lineage.
        var other = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.GlobexToken), null, "build", "--progress", "rawjson", "--build-arg", $"TOKEN={values[2]}", "-t", tag, context));
        Assert.Equal("never built: no earlier build of this Dockerfile and target", (string?)Explanation(other.Stdout)!["summary"]);

        // Acme's explanation is acme's: globex learns nothing of that build, not even that it exists.
        var acmeBuild = Id(first.Stdout);
        var acmeSees = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "explain", acmeBuild));
        Assert.Contains("rebuilt: never built", acmeSees.Stdout, StringComparison.Ordinal);
        var globexAsks = await FarmCli.RunAsync(farm.Env(farm.GlobexToken), null, "explain", acmeBuild);
        Assert.Equal(1, globexAsks.ExitCode);
        Assert.Contains("FARM5014", globexAsks.Stderr, StringComparison.Ordinal);
        var globexLast = SharedFarmExplainFixture.Ok(await FarmCli.RunAsync(farm.Env(farm.GlobexToken), null, "explain", "last"));
        Assert.Contains($"build {Id(other.Stdout)}: no earlier build", globexLast.Stdout, StringComparison.Ordinal);

        // The values: in no event, no explanation, and no Redis key but the build grains' stored submissions (which keep
        // a build's args to resume it on another coordinator: docs/architecture.md, "Why a step ran").
        var events = new StringBuilder();
        foreach (var (build, token) in new[] { (acmeBuild, farm.AcmeToken), (Id(other.Stdout), farm.GlobexToken) })
        {
            using var http = new HttpClient { BaseAddress = new Uri(farm.Env(null)["FARM_HOST"].TrimEnd('/') + "/") };
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
            events.Append(await http.GetStringAsync($"builds/{build}/events")).Append(await http.GetStringAsync($"api/builds/{build}"));
        }

        var keys = await RedisValuesAsync(farm.Redis.Configuration);
        Assert.Contains(keys.Keys, k => k.StartsWith("farm:lineage:", StringComparison.Ordinal));
        Assert.Contains("farm:explain-key", keys.Keys);
        foreach (var value in values)
        {
            Assert.DoesNotContain(value, first.Stdout + second.Stderr + dryCached.Stdout + dryMiss.Stdout + other.Stdout + acmeSees.Stdout + globexLast.Stdout + events, StringComparison.Ordinal);
            var holding = keys.Where(k => k.Value.Contains(value, StringComparison.Ordinal)).Select(k => k.Key).ToList();
            Assert.All(holding, k => Assert.True(!k.StartsWith("farm:", StringComparison.Ordinal) && k.Contains("build", StringComparison.OrdinalIgnoreCase), $"Redis key {k} holds a build arg's value"));
            Assert.DoesNotContain(value, farm.CoordinatorOutput(), StringComparison.Ordinal);
        }
    }

    private static JsonNode? Explanation(string rawjson) =>
        rawjson.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Last(e => (string?)e["type"] == "StepStarted")["explanation"];

    private static string Id(string rawjson) =>
        rawjson.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Select(e => (string?)e["buildId"]).First(b => b is not null)!;

    /// <summary>Every key of the Redis with its value(s) as text (Latin-1, so any byte is kept).</summary>
    private static async Task<Dictionary<string, string>> RedisValuesAsync(string configuration)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(configuration + ",allowAdmin=true");
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var db = redis.GetDatabase();
        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var key in server.KeysAsync(0, "*", pageSize: 500))
        {
            var text = new StringBuilder();
            switch (await db.KeyTypeAsync(key))
            {
                case RedisType.String:
                    text.Append(Latin1(await db.StringGetAsync(key)));
                    break;
                case RedisType.Hash:
                    foreach (var entry in await db.HashGetAllAsync(key))
                    {
                        text.Append(Latin1(entry.Name)).Append(' ').AppendLine(Latin1(entry.Value));
                    }

                    break;
                case RedisType.List:
                    text.AppendJoin('\n', (await db.ListRangeAsync(key)).Select(Latin1));
                    break;
                case RedisType.Set:
                    text.AppendJoin('\n', (await db.SetMembersAsync(key)).Select(Latin1));
                    break;
                case RedisType.SortedSet:
                    text.AppendJoin('\n', (await db.SortedSetRangeByRankAsync(key)).Select(Latin1));
                    break;
                case RedisType.Stream:
                    foreach (var entry in await db.StreamRangeAsync(key))
                    {
                        text.AppendJoin(' ', entry.Values.Select(v => Latin1(v.Name) + "=" + Latin1(v.Value))).AppendLine();
                    }

                    break;
                default:
                    throw new InvalidOperationException($"Redis key {key} has a type this search does not read: {await db.KeyTypeAsync(key)}");
            }

            all[key.ToString()] = text.ToString();
        }

        return all;
    }

    private static string Latin1(RedisValue value) => value.IsNull ? string.Empty : Encoding.Latin1.GetString((byte[])value!);
}
