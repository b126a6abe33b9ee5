using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Oci.Registry;
using Farm.Testing;
using Xunit.Abstractions;

namespace Farm.Cli.Tests;

/// <summary>
/// A shared farm's cache store in a registry that its operator garbage-collects: a coordinator process on a Redis of
/// its own, a worker process, and a distribution registry of the test's own (deletes enabled) holding the base image
/// and the cache repository, collected with the real <c>docker-registry garbage-collect</c> while it is stopped. The
/// collection keeps every cached layer; <c>farm system prune</c> and the coordinator's size cap
/// (<c>Farm:Builds:CacheMaxBytes</c>) delete the evicted entries' cache manifests, so the next collection frees
/// exactly their layers.
/// </summary>
public sealed class CacheGarbageCollectionTests(ITestOutputHelper output)
{
    private const string CacheRepository = "farm/cache";

    [Fact]
    public async Task A_registry_garbage_collection_keeps_the_cache_and_frees_exactly_what_prune_and_the_cap_evicted()
    {
        var directory = Directory.CreateTempSubdirectory("farm-cachegc-").FullName;
        await using var redis = await RedisServer.StartAsync();
        await using var registry = await RegistryServer.StartAsync();
        await using var vhost = await RabbitMqVirtualHost.CreateAsync("farm-cachegc-");
        CoordinatorProcess? coordinator = null;
        WorkerProcess? worker = null;
        var secret = "hunter-" + Guid.NewGuid().ToString("N");
        try
        {
            coordinator = StartCoordinator(vhost, redis, registry, directory, "c1", new Dictionary<string, string>());
            worker = WorkerProcess.Start("cachegc-worker", Path.Combine(directory, "w"), vhost.Name);
            var env = new Dictionary<string, string>
            {
                ["FARM_STATE_DIR"] = Path.Combine(directory, "state"),
                ["DOCKER_CONFIG"] = Path.Combine(directory, "docker"),
                ["FARM_HOST"] = coordinator.Url,
            };
            var baseImage = $"{registry.Address}/base/busybox:1";
            Ok(await FarmCli.RunAsync(env, null, "import", BuildFixture.BusyboxRootfs(directory), baseImage));
            Ok(await FarmCli.RunAsync(env, null, "push", baseImage));
            await coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
            await Wait.UntilAsync(async () => await vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics(coordinator, worker));
            using var client = new RegistryClient(registry.Address);

            // Two projects: a has three steps (one with a build argument the cache manifests must not carry), b two.
            var a = Project(directory, "a", baseImage, 3);
            var b = Project(directory, "b", baseImage, 2);
            await BuildAsync(env, a, ran: 3, "--build-arg", "SECRET_ARG=" + secret);
            var aLayers = await CacheLayersAsync(client, []);
            await BuildAsync(env, b, ran: 2);
            var bLayers = await CacheLayersAsync(client, aLayers.Keys);
            Assert.Equal((3, 2), (aLayers.Count, bLayers.Count));
            MeasureManifestPuts(registry);

            var collected = await registry.GarbageCollectAsync();
            Assert.True(aLayers.Values.Concat(bLayers.Values).All(l => registry.HoldsBlob(l.Digest)), "the collection deleted cached layers: " + collected);
            await BuildAsync(env, a, ran: 0, "--build-arg", "SECRET_ARG=" + secret);
            await BuildAsync(env, b, ran: 0);
            Assert.DoesNotContain(Directory.EnumerateFiles(registry.StorageDirectory, "*", SearchOption.AllDirectories), f => File.ReadAllText(f).Contains(secret, StringComparison.Ordinal));

            // b was used last: keeping b's size evicts a's three entries and no other.
            var pruned = await FarmCli.RunAsync(env, null, "system", "prune", "-f", "--keep-storage", bLayers.Values.Sum(l => l.Size).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(pruned.ExitCode == 0, pruned + Diagnostics(coordinator, worker));
            Assert.Contains("Deleted build cache entries: 3 (3 layers no longer used)", pruned.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("Cache manifests kept", pruned.Stdout, StringComparison.Ordinal);
            Assert.Equal(bLayers.Keys.Order(), (await CacheTagsAsync(client)).Order());
            collected = await registry.GarbageCollectAsync();
            Assert.True(aLayers.Values.All(l => !registry.HoldsBlob(l.Digest)), "the collection kept evicted layers: " + collected);
            Assert.True(bLayers.Values.All(l => registry.HoldsBlob(l.Digest)), "the collection deleted kept layers: " + collected);
            await BuildAsync(env, b, ran: 0);
            await BuildAsync(env, a, ran: 3, "--build-arg", "SECRET_ARG=" + secret);

            // A coordinator with a cap of one byte evicts every entry on its own, the least recently used first.
            await coordinator.DisposeAsync();
            coordinator = StartCoordinator(vhost, redis, registry, directory, "c2", new Dictionary<string, string>
            {
                ["Farm__Builds__CacheMaxBytes"] = "1",
                ["Farm__Builds__CacheCapInterval"] = "00:00:01",
            });
            await coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
            var capped = coordinator;
            await Wait.UntilAsync(async () => (await CacheTagsAsync(client)).Count == 0, TimeSpan.FromSeconds(60), () => "the cap to delete every cache manifest" + Diagnostics(capped, worker));
            env["FARM_HOST"] = coordinator.Url;
            var df = await FarmCli.RunAsync(env, null, "system", "df", "--format", "json");
            Assert.Equal(0L, (long)JsonNode.Parse(df.Stdout)!["buildCache"]!["entries"]!);
            Assert.Contains("Build cache over its cap of 1 bytes", coordinator.Output(), StringComparison.Ordinal);
            collected = await registry.GarbageCollectAsync();
            Assert.True(bLayers.Values.All(l => !registry.HoldsBlob(l.Digest)), "the collection kept layers the cap evicted: " + collected);
        }
        finally
        {
            await Teardown.InOrderAsync(worker, coordinator);
            Directory.Delete(directory, recursive: true);
        }
    }

    private static CoordinatorProcess StartCoordinator(RabbitMqVirtualHost vhost, RedisServer redis, RegistryServer registry, string directory, string name, IReadOnlyDictionary<string, string> more)
    {
        var environment = new Dictionary<string, string>(more)
        {
            ["Farm__Coordinator__Redis"] = redis.Configuration,
            ["Farm__Coordinator__ClusterId"] = "cachegc",
            ["Farm__Coordinator__ServiceId"] = "cachegc",
        };
        return CoordinatorProcess.Start(vhost.AmqpUrl, 0, $"registry://{registry.Address}/{CacheRepository}", Path.Combine(directory, name), environment);
    }

    /// <summary>
    /// A context whose Dockerfile has <paramref name="steps"/> RUN steps, each printing a line of its own and writing a
    /// file, with <c>SECRET_ARG</c> in scope (in their environment and cache keys, never in a layer).
    /// </summary>
    private static string Project(string directory, string name, string baseImage, int steps)
    {
        var context = Directory.CreateDirectory(Path.Combine(directory, name)).FullName;
        var text = new StringBuilder($"FROM {baseImage}\nARG SECRET_ARG\n");
        for (var i = 1; i <= steps; i++)
        {
            text.Append($"RUN echo ran-{name}-{i} && echo {name}{i} > /{name}{i}\n");
        }

        File.WriteAllText(Path.Combine(context, "Dockerfile"), text.ToString());
        return context;
    }

    /// <summary>Builds; asserts how many steps ran (printed their line) and that the others were cache hits.</summary>
    private async Task BuildAsync(Dictionary<string, string> env, string context, int ran, params string[] args)
    {
        var build = await FarmCli.RunAsync(env, null, ["build", "--progress", "plain", .. args, context]);
        Assert.True(build.ExitCode == 0, build.ToString());
        var name = Path.GetFileName(context);
        var steps = Regex.Count(build.Stderr, $@"^#\d+ \d+\.\d{{3}} ran-{name}-\d$", RegexOptions.Multiline);
        var cached = Regex.Count(build.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline);
        var done = Regex.Matches(build.Stderr, @"^#\d+ DONE (\S+)$", RegexOptions.Multiline).Select(m => m.Groups[1].Value);
        output.WriteLine($"build {name}: {steps} ran ({string.Join(", ", done)}), {cached} cached");
        Assert.True(steps == ran && cached + ran == File.ReadAllLines(Path.Combine(context, "Dockerfile")).Count(l => l.StartsWith("RUN", StringComparison.Ordinal)), build.ToString());
    }

    private static async Task<IReadOnlyList<string>> CacheTagsAsync(RegistryClient client) =>
        [.. (await client.ListTagsAsync(CacheRepository, CancellationToken.None)).Where(t => t.StartsWith("farm-ac-", StringComparison.Ordinal))];

    /// <summary>The layer of every cache manifest whose tag is not in <paramref name="known"/>, by tag.</summary>
    private static async Task<Dictionary<string, (string Digest, long Size)>> CacheLayersAsync(RegistryClient client, IEnumerable<string> known)
    {
        var layers = new Dictionary<string, (string, long)>();
        foreach (var tag in (await CacheTagsAsync(client)).Except(known))
        {
            var manifest = JsonNode.Parse((await client.GetManifestAsync(CacheRepository, tag, CancellationToken.None)).Content.Span)!;
            var layer = manifest["layers"]!.AsArray().Single()!;
            layers[tag] = ((string)layer["digest"]!, (long)layer["size"]!);
        }

        return layers;
    }

    /// <summary>What a cache manifest costs a build miss: the registry's own time for each PUT (its log), for bench/results.</summary>
    private void MeasureManifestPuts(RegistryServer registry)
    {
        foreach (Match m in Regex.Matches(registry.Output(), @"http\.request\.method=PUT.*?manifests/farm-ac-[0-9a-f]{8}.*?http\.response\.duration=(\S+)|http\.response\.duration=(\S+).*?http\.request\.method=PUT.*?manifests/farm-ac-"))
        {
            output.WriteLine("cache manifest PUT: " + (m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value));
        }
    }

    private static string Diagnostics(CoordinatorProcess? coordinator, WorkerProcess? worker) =>
        Teardown.Diagnostics(("coordinator", coordinator?.OutputTail()), ("worker", worker?.OutputTail()));

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
