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
        await using var farm = await GcFarm.StartAsync(deletes: true);
        var (registry, env) = (farm.Registry, farm.Env);
        var secret = "hunter-" + Guid.NewGuid().ToString("N");
        using var client = new RegistryClient(registry.Address);

        // Two projects: a has three steps (with a build argument the cache manifests must not carry), b two.
        var a = Project(farm.Directory, "a", farm.BaseImage, 3);
        var b = Project(farm.Directory, "b", farm.BaseImage, 2);
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
        Assert.True(pruned.ExitCode == 0, pruned + farm.Diagnostics());
        Assert.Contains("Deleted build cache entries: 3 (3 layers no longer used)", pruned.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Cache manifests kept", pruned.Stdout, StringComparison.Ordinal);
        Assert.Equal(bLayers.Keys.Order(), (await CacheTagsAsync(client)).Order());
        collected = await registry.GarbageCollectAsync();
        Assert.True(aLayers.Values.All(l => !registry.HoldsBlob(l.Digest)), "the collection kept evicted layers: " + collected);
        Assert.True(bLayers.Values.All(l => registry.HoldsBlob(l.Digest)), "the collection deleted kept layers: " + collected);
        await BuildAsync(env, b, ran: 0);
        await BuildAsync(env, a, ran: 3, "--build-arg", "SECRET_ARG=" + secret);

        // A coordinator with a cap of one byte evicts every entry on its own, the least recently used first.
        await farm.RestartCoordinatorAsync(new Dictionary<string, string>
        {
            ["Farm__Builds__CacheMaxBytes"] = "1",
            ["Farm__Builds__CacheCapInterval"] = "00:00:01",
        });
        await Wait.UntilAsync(async () => (await CacheTagsAsync(client)).Count == 0, TimeSpan.FromSeconds(60), () => "the cap to delete every cache manifest" + farm.Diagnostics());
        var df = await FarmCli.RunAsync(env, null, "system", "df", "--format", "json");
        Assert.Equal(0L, (long)JsonNode.Parse(df.Stdout)!["buildCache"]!["entries"]!);
        Assert.Contains("Build cache over its cap of 1 bytes", farm.Coordinator.Output(), StringComparison.Ordinal);
        collected = await registry.GarbageCollectAsync();
        Assert.True(bLayers.Values.All(l => !registry.HoldsBlob(l.Digest)), "the collection kept layers the cap evicted: " + collected);
    }

    [Fact]
    public async Task A_prune_on_a_registry_without_deletes_removes_the_entries_and_says_what_it_kept()
    {
        await using var farm = await GcFarm.StartAsync(deletes: false);
        using var client = new RegistryClient(farm.Registry.Address);
        await BuildAsync(farm.Env, Project(farm.Directory, "c", farm.BaseImage, 1), ran: 1);

        var pruned = await FarmCli.RunAsync(farm.Env, null, "system", "prune", "-f");

        Assert.True(pruned.ExitCode == 0, pruned + farm.Diagnostics());
        Assert.Contains("Deleted build cache entries: 1", pruned.Stdout, StringComparison.Ordinal);
        Assert.Contains("Cache manifests kept: 1: FARM4290:", pruned.Stdout, StringComparison.Ordinal);
        Assert.Contains("storage.delete.enabled: true", pruned.Stdout, StringComparison.Ordinal);
        Assert.Single(await CacheTagsAsync(client));
        var df = await FarmCli.RunAsync(farm.Env, null, "system", "df", "--format", "json");
        Assert.Equal(0L, (long)JsonNode.Parse(df.Stdout)!["buildCache"]!["entries"]!);
    }

    /// <summary>
    /// A shared farm on a registry of the test's own: a coordinator process on a Redis of its own, a worker process, a
    /// RabbitMQ virtual host, the busybox base in the registry (repository <c>base/busybox</c>, beside the cache).
    /// </summary>
    private sealed class GcFarm : IAsyncDisposable
    {
        private RedisServer? _redis;
        private RabbitMqVirtualHost? _vhost;
        private WorkerProcess? _worker;
        private int _coordinators;

        public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-cachegc-").FullName;

        public RegistryServer Registry { get; private set; } = null!;

        public CoordinatorProcess Coordinator { get; private set; } = null!;

        public string BaseImage => $"{Registry.Address}/base/busybox:1";

        /// <summary>The CLI's environment, with the coordinator as FARM_HOST.</summary>
        public Dictionary<string, string> Env { get; } = [];

        public static async Task<GcFarm> StartAsync(bool deletes)
        {
            var farm = new GcFarm();
            try
            {
                farm._redis = await RedisServer.StartAsync();
                farm.Registry = await RegistryServer.StartAsync(deletes);
                farm._vhost = await RabbitMqVirtualHost.CreateAsync("farm-cachegc-");
                farm.Env["FARM_STATE_DIR"] = Path.Combine(farm.Directory, "state");
                farm.Env["DOCKER_CONFIG"] = Path.Combine(farm.Directory, "docker");
                await farm.RestartCoordinatorAsync(new Dictionary<string, string>());
                farm._worker = WorkerProcess.Start("cachegc-worker", Path.Combine(farm.Directory, "w"), farm._vhost.Name);
                Ok(await FarmCli.RunAsync(farm.Env, null, "import", BuildFixture.BusyboxRootfs(farm.Directory), farm.BaseImage));
                Ok(await FarmCli.RunAsync(farm.Env, null, "push", farm.BaseImage));
                var vhost = farm._vhost;
                await Wait.UntilAsync(async () => await vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + farm.Diagnostics());
                return farm;
            }
            catch
            {
                await farm.DisposeAsync();
                throw;
            }
        }

        /// <summary>Stops the coordinator (if any) and starts another on the same services with <paramref name="more"/> settings.</summary>
        public async Task RestartCoordinatorAsync(IReadOnlyDictionary<string, string> more)
        {
            if (Coordinator is not null)
            {
                await Coordinator.DisposeAsync();
            }

            var environment = new Dictionary<string, string>(more)
            {
                ["Farm__Coordinator__Redis"] = _redis!.Configuration,
                ["Farm__Coordinator__ClusterId"] = "cachegc",
                ["Farm__Coordinator__ServiceId"] = "cachegc",
            };
            Coordinator = CoordinatorProcess.Start(_vhost!.AmqpUrl, 0, $"registry://{Registry.Address}/{CacheRepository}", Path.Combine(Directory, $"c{++_coordinators}"), environment);
            Env["FARM_HOST"] = Coordinator.Url;
            await Coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        }

        public string Diagnostics() =>
            Teardown.Diagnostics(("coordinator", Coordinator?.OutputTail()), ("worker", _worker?.OutputTail()), ("registry", Registry?.OutputTail()));

        public async ValueTask DisposeAsync()
        {
            await Teardown.InOrderAsync(_worker, Coordinator, _vhost, Registry, _redis);
            System.IO.Directory.Delete(Directory, recursive: true);
        }
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

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
