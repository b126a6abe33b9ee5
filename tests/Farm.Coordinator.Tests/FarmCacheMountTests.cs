using System.Globalization;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Oci.Stores;
using Farm.Testing;
using Farm.Worker.RunMounts;

namespace Farm.Coordinator.Tests;

/// <summary>
/// <see cref="FarmClusterFixture"/> whose workers publish cache snapshots of at most 1 MB and hold a locked cache's lease
/// for 5 s between renewals (so a 3 s step renews it), to see the bound and the renewal at work.
/// </summary>
public sealed class CacheMountFarmFixture : FarmClusterFixture
{
    public const long MaxSnapshotBytes = 1_000_000;

    protected override IReadOnlyDictionary<string, string>? WorkerEnvironment => new Dictionary<string, string>
    {
        ["Farm__Worker__CacheSnapshotMaxBytes"] = MaxSnapshotBytes.ToString(CultureInfo.InvariantCulture),
        ["Farm__Worker__CacheLeaseTime"] = "00:00:05",
    };
}

/// <summary>
/// Cache mounts as farm-wide objects (docs/architecture.md, "Cache mounts across the farm"), through one coordinator
/// (Redis, RabbitMQ) and two worker processes: what each step saw of its cache comes from its output in the build's
/// events, which worker ran it from its outcome.
/// </summary>
[Collection(FarmClusterCollection.Name)]
public sealed class FarmCacheMountTests(CacheMountFarmFixture farm) : IClassFixture<CacheMountFarmFixture>
{
    private static readonly IReadOnlyDictionary<string, string> Files = new Dictionary<string, string> { ["README"] = "cache mounts\n" };

    [Fact]
    public async Task A_locked_cache_is_held_by_one_worker_at_a_time_across_two_workers()
    {
        var id = "locked-" + Guid.NewGuid().ToString("N")[..8];
        // Each step notes when it started and ended (the machine's uptime, one clock for every container) in the cache,
        // takes 3 s, and prints the cache's log: a step that started while the other held the cache would interleave.
        string Dockerfile(string name) => $$"""
            ARG BASE
            FROM ${BASE}
            RUN --mount=type=cache,id={{id}},target=/c,sharing=locked echo "start {{name}} $(cut -d' ' -f1 /proc/uptime)" >> /c/log && sleep 3 && echo "end {{name}} $(cut -d' ' -f1 /proc/uptime)" >> /c/log && cat /c/log
            """;

        var first = farm.Coordinator.Builds.Submit(await farm.SubmissionAsync(Dockerfile("one"), Files, []));
        var second = farm.Coordinator.Builds.Submit(await farm.SubmissionAsync(Dockerfile("two"), Files, []));
        await Wait.UntilAsync(() => first.IsDone && second.IsDone, TimeSpan.FromMinutes(5), () => "both builds to end" + Describe(first) + Describe(second) + farm.Diagnostics());
        Assert.True(first.End is BuildFinished, Describe(first) + farm.Diagnostics());
        Assert.True(second.End is BuildFinished, Describe(second) + farm.Diagnostics());

        // One job each, one slot each: both workers ran one of the steps.
        Assert.NotEqual(Step(first).Worker, Step(second).Worker);

        // The step that ran last printed the whole log: the other's lines, which another worker wrote, and its own, with
        // no start of one between the start and the end of the other. (Output lines can reach the events out of order:
        // they are put in order by the uptime each holds, an end before a start at the same instant.)
        var (earlier, later) = Log(first).Count > Log(second).Count ? (second, first) : (first, second);
        var log = Log(later);
        Assert.True(log.Count == 4, "the later step's log: " + string.Join(" | ", log) + Describe(later) + farm.Diagnostics());
        Assert.Equal(Log(earlier).Order(StringComparer.Ordinal), log.Where(l => Log(earlier).Contains(l)).Order(StringComparer.Ordinal));
        var entries = log.Select(l => l.Split(' '))
            .Select(f => (Kind: f[0], Name: f[1], Time: double.Parse(f[2], CultureInfo.InvariantCulture)))
            .OrderBy(e => e.Time).ThenBy(e => e.Kind == "start")
            .ToList();
        Assert.True(
            entries.Select(e => e.Kind).SequenceEqual(["start", "end", "start", "end"]) && entries[0].Name == entries[1].Name && entries[2].Name == entries[3].Name && entries[1].Name != entries[2].Name,
            "the two steps held the cache at once: " + string.Join(" | ", entries));
    }

    [Fact]
    public async Task A_worker_that_never_held_a_cache_starts_from_what_another_worker_wrote_and_a_cache_over_the_bound_is_not_published()
    {
        var small = "warm-" + Guid.NewGuid().ToString("N")[..8];
        var big = "big-" + Guid.NewGuid().ToString("N")[..8];
        var marker = Guid.NewGuid().ToString("N");
        var write = await BuildAsync($$"""
            ARG BASE
            FROM ${BASE}
            RUN --mount=type=cache,id={{small}},target=/c --mount=type=cache,id={{big}},target=/big echo {{marker}} > /c/pkg && head -c {{CacheMountFarmFixture.MaxSnapshotBytes * 2}} /dev/urandom > /big/blob
            """);
        var writer = farm.Workers.Single(w => w.Name == Step(write).Worker);

        // The snapshot is published after the build ended, off the step's path.
        await Wait.UntilAsync(() => farm.Coordinator.Log.Tail(2000).Contains($"Cache mount {CacheMounts.Key(null, small)}: snapshot", StringComparison.Ordinal), TimeSpan.FromMinutes(2),
            () => $"the coordinator to take the snapshot of {small}" + farm.Diagnostics());
        await Wait.UntilAsync(() => writer.Output().Contains($"Cache '{big}' not published", StringComparison.Ordinal), TimeSpan.FromMinutes(2),
            () => $"{writer.Name} to say that {big} is over the snapshot bound" + farm.Diagnostics());

        // The writer goes; the build runs on a worker that never held either cache.
        await farm.StopWorkerAsync(writer);
        var fresh = farm.StartWorker("worker-" + (char)('c' + farm.Workers.Count));
        await farm.WaitForWorkersAsync(2);
        var read = await BuildAsync($$"""
            ARG BASE
            FROM ${BASE}
            RUN --mount=type=cache,id={{small}},target=/c --mount=type=cache,id={{big}},target=/big echo "pkg: $(cat /c/pkg)" && echo "big: $(ls /big | wc -l)"
            """);

        Assert.NotEqual(writer.Name, Step(read).Worker);
        var output = Output(read);
        Assert.Contains("pkg: " + marker, output);
        Assert.Contains("big: 0", output);
        Assert.Contains(fresh.Name, farm.Workers.Select(w => w.Name));
    }

    [Fact]
    public async Task Tenants_never_see_each_others_caches_of_the_same_id()
    {
        var id = "tenant-" + Guid.NewGuid().ToString("N")[..8];
        var marker = Guid.NewGuid().ToString("N");
        await BuildAsync($$"""
            ARG BASE
            FROM ${BASE}
            RUN --mount=type=cache,id={{id}},target=/c echo {{marker}} > /c/secret-of-acme
            """, tenant: "acme");
        await Wait.UntilAsync(() => farm.Coordinator.Log.Tail(2000).Contains($"Cache mount {CacheMounts.Key("acme", id)}: snapshot", StringComparison.Ordinal), TimeSpan.FromMinutes(2),
            () => $"the coordinator to take acme's snapshot of {id}" + farm.Diagnostics());

        // Twice, so that globex's step runs on both workers: the one that wrote acme's cache, and the other, which
        // would fetch acme's snapshot if the farm mixed tenants.
        var workers = new HashSet<string>();
        for (var i = 0; i < 6 && workers.Count < 2; i++)
        {
            var read = await BuildAsync($$"""
                ARG BASE
                FROM ${BASE}
                RUN --mount=type=cache,id={{id}},target=/c echo "{{i}} sees: $(ls -A /c | wc -l) $(cat /c/* 2>/dev/null)"
                """, tenant: "globex");
            workers.Add(Step(read).Worker);
            Assert.Contains($"{i} sees: 0", Output(read));
            Assert.DoesNotContain(marker, Output(read));
        }
    }

    [Fact]
    public async Task A_locked_lease_whose_holder_stops_renewing_goes_to_the_next_worker_when_it_runs_out_and_the_late_holders_cache_is_refused()
    {
        var id = "lease-" + Guid.NewGuid().ToString("N")[..8];
        var grain = farm.Coordinator.Grains.GetGrain<Grains.ICacheMountGrain>(CacheMounts.Key("acme", id));
        var killed = Guid.NewGuid();
        var next = Guid.NewGuid();
        AcquireCacheMount Ask(Guid holder, string worker) => new() { Tenant = "acme", Id = id, Sharing = "locked", Worker = worker, Holder = holder, LeaseTime = TimeSpan.FromSeconds(2) };

        Assert.True((await grain.AcquireAsync(Ask(killed, "worker-killed"))).Granted);
        var refused = await grain.AcquireAsync(Ask(next, "worker-next"));
        Assert.False(refused.Granted);
        Assert.Equal("worker-killed", refused.HeldBy);

        // The holder was killed: it renews nothing, and after its lease the next worker gets the cache.
        await Wait.UntilAsync(async () => (await grain.AcquireAsync(Ask(next, "worker-next"))).Granted, TimeSpan.FromMinutes(1),
            () => "the lease of the killed holder to run out");
        Assert.False((await grain.RenewAsync(new RenewCacheMount { Tenant = "acme", Id = id, Holder = killed })).Granted);
        var late = await grain.ReleaseAsync(new ReleaseCacheMount
        {
            Tenant = "acme",
            Id = id,
            Sharing = "locked",
            Worker = "worker-killed",
            Holder = killed,
            Snapshot = new CacheSnapshot { Digest = "sha256:" + new string('0', 64), DiffId = "sha256:" + new string('1', 64), MediaType = "application/vnd.oci.image.layer.v1.tar+gzip", Size = 1, BlobStore = farm.Store.StoreAddress, Worker = "worker-killed" },
        });
        Assert.False(late.Granted);
        Assert.Null(late.Latest);
        Assert.False((await grain.AcquireAsync(Ask(Guid.NewGuid(), "worker-third"))).Granted);
    }

    [Fact]
    public async Task Snapshots_over_the_budget_are_evicted_least_recently_used_first()
    {
        // An index of its own (the farm's is key 0), so the budget here touches no other test's caches.
        var index = farm.Coordinator.Grains.GetGrain<Grains.ICacheMountIndexGrain>(Random.Shared.NextInt64(1, long.MaxValue));
        Assert.Empty(await index.UsedAsync("old", "sha256:old", 400, 1000));
        Assert.Empty(await index.UsedAsync("used", "sha256:used", 400, 1000));
        Assert.Empty(await index.UsedAsync("old", "sha256:old", 400, 1000));

        var evicted = await index.UsedAsync("new", "sha256:new", 400, 1000);

        // "used" was used longest ago: "old" was used again after it.
        Assert.Equal(["used"], evicted.Select(e => e.Key));
        Assert.Equal("sha256:used", evicted[0].Digest);
    }

    [Fact]
    public async Task The_same_worker_takes_a_locked_cache_again_without_waiting_for_its_upload_and_another_worker_waits_for_it_then_sees_every_change_in_order()
    {
        var id = "gen-" + Guid.NewGuid().ToString("N")[..8];
        using var farmSide = new GatedCoordinator(farm.Coordinator.Grains);
        using var a = new InProcessWorker(farm, "in-a", farmSide);
        using var b = new InProcessWorker(farm, "in-b", farmSide);

        // Step one on A writes, and its upload is held back at the farm's door.
        using (var one = await a.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None))
        {
            File.WriteAllText(Path.Combine(one.Directory, "one"), "1");
            one.Succeeded();
        }

        // Step two on A gets the cache, as step one left it, while step one's snapshot is still not published.
        using (var two = await a.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2)))
        {
            Assert.Equal("1", File.ReadAllText(Path.Combine(two.Directory, "one")));
            Assert.Equal(0, farmSide.Published);
            File.WriteAllText(Path.Combine(two.Directory, "two"), "2");
            File.WriteAllText(Path.Combine(two.Directory, "one"), "1, changed");
            two.Succeeded();
        }

        // B waits for A's newest generation rather than start from nothing.
        var waiting = b.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None);
        await Wait.UntilAsync(() => b.Log.Tail(200).Contains($"Cache '{id}': its newest generation 2 is still being published by in-a: waiting for it", StringComparison.Ordinal), TimeSpan.FromMinutes(2),
            () => "B to wait for A's snapshot" + Environment.NewLine + b.Log.Tail(50) + Environment.NewLine + a.Log.Tail(50));
        Assert.False(waiting.IsCompleted, "B took the cache before A's snapshot was published");
        farmSide.Open();
        using (var three = await waiting.WaitAsync(TimeSpan.FromMinutes(2)))
        {
            Assert.True(three.Restored);
            Assert.Equal("1, changed", File.ReadAllText(Path.Combine(three.Directory, "one")));
            Assert.Equal("2", File.ReadAllText(Path.Combine(three.Directory, "two")));
            File.Delete(Path.Combine(three.Directory, "one"));
            File.WriteAllText(Path.Combine(three.Directory, "three"), "3");
            three.Succeeded();
        }

        await b.Caches.WhenPublishedAsync().WaitAsync(TimeSpan.FromMinutes(2));

        // Back on A: B's changes, B's one delta applied over what A had published, nothing fetched again.
        using var four = await a.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(four.Restored);
        Assert.Equal(["three", "two"], Directory.EnumerateFiles(four.Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Contains("caught up with: 1 deltas", a.Log.Tail(200), StringComparison.Ordinal);
        var latest = (await Grain(id).AcquireAsync(new AcquireCacheMount { Id = id, Sharing = "shared", Worker = "test", Holder = Guid.NewGuid() })).Latest!;
        Assert.Equal("in-b", latest.Worker);
        Assert.NotNull(latest.Parent);
        Assert.Equal(3, latest.Generation);
    }

    [Fact]
    public async Task An_unchanged_cache_and_a_failed_step_publish_nothing()
    {
        var id = "same-" + Guid.NewGuid().ToString("N")[..8];
        using var farmSide = new GatedCoordinator(farm.Coordinator.Grains, open: true);
        using var a = new InProcessWorker(farm, "in-a", farmSide);
        async Task StepAsync(Action<string> write, bool succeed)
        {
            using (var lease = await a.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None))
            {
                write(lease.Directory);
                if (succeed)
                {
                    lease.Succeeded();
                }
            }

            await a.Caches.WhenPublishedAsync().WaitAsync(TimeSpan.FromMinutes(2));
        }

        await StepAsync(d => File.WriteAllText(Path.Combine(d, "pkg"), "x"), succeed: true);
        Assert.Equal(1, farmSide.Published);
        var first = await LatestAsync(id);

        await StepAsync(d => _ = File.ReadAllText(Path.Combine(d, "pkg")), succeed: true);
        await StepAsync(d => File.WriteAllText(Path.Combine(d, "half-written"), "y"), succeed: false);

        Assert.Equal(1, farmSide.Published);
        Assert.Contains($"Cache '{id}' unchanged", a.Log.Tail(200), StringComparison.Ordinal);
        var granted = await Grain(id).AcquireAsync(new AcquireCacheMount { Id = id, Sharing = "shared", Worker = "test", Holder = Guid.NewGuid() });
        Assert.Equal(first!.Digest, granted.Latest!.Digest);
        Assert.Equal(1, granted.Generation);
        Assert.Null(granted.NewestOn);
    }

    [Fact]
    public async Task A_chain_is_compacted_to_a_whole_snapshot_after_eight_blobs_and_a_fresh_worker_restores_it()
    {
        var id = "chain-" + Guid.NewGuid().ToString("N")[..8];
        using var farmSide = new GatedCoordinator(farm.Coordinator.Grains, open: true);
        using var a = new InProcessWorker(farm, "in-a", farmSide);
        var lengths = new List<int>();
        for (var i = 0; i < 10; i++)
        {
            using (var lease = await a.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None))
            {
                if (i == 0)
                {
                    File.WriteAllText(Path.Combine(lease.Directory, "base"), new string('b', 100_000));
                }

                File.WriteAllText(Path.Combine(lease.Directory, "f" + i), i.ToString(CultureInfo.InvariantCulture));
                lease.Succeeded();
            }

            await a.Caches.WhenPublishedAsync().WaitAsync(TimeSpan.FromMinutes(2));
            var latest = await LatestAsync(id);
            var length = 0;
            for (var s = latest; s is not null; s = s.Parent)
            {
                length++;
            }

            lengths.Add(length);
        }

        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 1, 2], lengths);

        using var fresh = new InProcessWorker(farm, "in-fresh", farmSide);
        using var read = await fresh.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None);
        Assert.True(read.Restored);
        Assert.Equal(11, Directory.EnumerateFiles(read.Directory).Count());
        Assert.Equal("9", File.ReadAllText(Path.Combine(read.Directory, "f9")));
    }

    [Fact]
    public async Task A_worker_waits_for_a_generation_that_is_never_published_only_up_to_its_bound_then_goes_on_from_the_latest_published()
    {
        var id = "late-" + Guid.NewGuid().ToString("N")[..8];
        using var open = new GatedCoordinator(farm.Coordinator.Grains, open: true);
        using var held = new GatedCoordinator(farm.Coordinator.Grains);
        using var first = new InProcessWorker(farm, "in-first", open);
        using var stuck = new InProcessWorker(farm, "in-stuck", held);
        using var next = new InProcessWorker(farm, "in-next", open, publishWait: TimeSpan.FromSeconds(2));

        using (var one = await first.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None))
        {
            File.WriteAllText(Path.Combine(one.Directory, "published"), "1");
            one.Succeeded();
        }

        await first.Caches.WhenPublishedAsync().WaitAsync(TimeSpan.FromMinutes(2));

        // Generation 2 is made on a worker whose snapshot never reaches the farm (its publication is held for good).
        using (var two = await stuck.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None))
        {
            Assert.True(two.Restored);
            File.WriteAllText(Path.Combine(two.Directory, "never-published"), "2");
            two.Succeeded();
        }

        await Wait.UntilAsync(async () => (await Grain(id).AcquireAsync(new AcquireCacheMount { Id = id, Sharing = "shared", Worker = "test", Holder = Guid.NewGuid() })).NewestOn == "in-stuck",
            TimeSpan.FromMinutes(2), () => "in-stuck's release to reach the grain" + Environment.NewLine + stuck.Log.Tail(50));

        using var three = await next.Caches.AcquireAsync(null, id, "locked", farm.Store.StoreAddress, readOnly: false, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Contains($"Cache '{id}': in-stuck did not publish generation 2 within", next.Log.Tail(200), StringComparison.Ordinal);
        Assert.True(three.Restored);
        Assert.Equal(["published"], Directory.EnumerateFiles(three.Directory).Select(Path.GetFileName));
        held.Open();
    }

    private Grains.ICacheMountGrain Grain(string id) => farm.Coordinator.Grains.GetGrain<Grains.ICacheMountGrain>(CacheMounts.Key(null, id));

    private async Task<CacheSnapshot?> LatestAsync(string id) =>
        (await Grain(id).AcquireAsync(new AcquireCacheMount { Id = id, Sharing = "shared", Worker = "test", Holder = Guid.NewGuid() })).Latest;

    private async Task<BuildRecord> BuildAsync(string dockerfile, string? tenant = null)
    {
        var submit = await farm.SubmissionAsync(dockerfile, Files, []);
        var record = await farm.Coordinator.BuildAsync(submit with { Tenant = tenant }, farm.Diagnostics);
        Assert.True(record.End is BuildFinished, FarmCoordinator.Describe(record) + farm.Diagnostics());
        return record;
    }

    private static StepOutcome Step(BuildRecord record) => record.Events.OfType<StepFinished>().Single().Outcome;

    private static string Output(BuildRecord record) => string.Join("\n", record.Events.OfType<StepLog>().Select(l => l.Line.Line));

    /// <summary>The lines <c>start|end NAME UPTIME</c> the step printed.</summary>
    private static List<string> Log(BuildRecord record) =>
        [.. record.Events.OfType<StepLog>().Select(l => l.Line.Line.Trim()).Where(l => l.StartsWith("start ", StringComparison.Ordinal) || l.StartsWith("end ", StringComparison.Ordinal))];

    private static string Describe(BuildRecord record) => Environment.NewLine + "build " + record.BuildId + ":" + FarmCoordinator.Describe(record);
}

/// <summary>
/// A worker's cache mounts in the test process, with the coordinators' real cache mount grains (the farm's silo) and
/// the farm's registry as the blob store, and its log lines kept.
/// </summary>
internal sealed class InProcessWorker : IDisposable
{
    private readonly BlobStoreLocator _stores = new();
    private readonly string _root;

    public InProcessWorker(FarmClusterFixture farm, string name, ICacheMountCoordinator coordinator, TimeSpan? publishWait = null)
    {
        _root = Path.Combine(farm.Store.Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(_root, "scratch"));
        Caches = new CacheMounts(Path.Combine(_root, "caches"), new FarmCacheSettings
        {
            Coordinator = coordinator,
            Worker = name,
            Stores = _stores,
            Scratch = Path.Combine(_root, "scratch"),
            PublishWait = publishWait ?? TimeSpan.FromMinutes(5),
            Logger = Log.CreateLogger(name),
        });
    }

    public LogLines Log { get; } = new();

    public CacheMounts Caches { get; }

    public void Dispose()
    {
        Caches.WhenPublishedAsync().Wait(TimeSpan.FromMinutes(2));
        _stores.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}

/// <summary>
/// The farm side of cache mounts straight to the cache mount grains (what CacheMountConsumer does over the bus), whose
/// snapshot publications wait at a gate until the test opens it: the way to see what happens while an upload is on its
/// way without timing anything.
/// </summary>
internal sealed class GatedCoordinator(IGrainFactory grains, bool open = false) : ICacheMountCoordinator, IDisposable
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _published;

    /// <summary>Snapshots published (let through the gate and taken by the grain).</summary>
    public int Published => Volatile.Read(ref _published);

    public void Open() => _gate.TrySetResult();

    public Task<CacheMountGranted> AcquireAsync(AcquireCacheMount request, CancellationToken cancellationToken) =>
        Grain(request.Tenant, request.Id).AcquireAsync(request);

    public Task<CacheMountGranted> RenewAsync(RenewCacheMount request, CancellationToken cancellationToken) =>
        Grain(request.Tenant, request.Id).RenewAsync(request);

    public Task<CacheMountGranted> ReleaseAsync(ReleaseCacheMount request, CancellationToken cancellationToken) =>
        Grain(request.Tenant, request.Id).ReleaseAsync(request);

    public async Task<CacheMountGranted> PublishAsync(PublishCacheSnapshot request, CancellationToken cancellationToken)
    {
        if (!open)
        {
            await _gate.Task.WaitAsync(cancellationToken);
        }

        var granted = await Grain(request.Tenant, request.Id).PublishAsync(request);
        if (granted.Granted)
        {
            Interlocked.Increment(ref _published);
        }

        return granted;
    }

    public void Dispose() => Open();

    private Grains.ICacheMountGrain Grain(string? tenant, string id) => grains.GetGrain<Grains.ICacheMountGrain>(CacheMounts.Key(tenant, id));
}
