using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Telemetry;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Farm.Coordinator.Tests;

/// <summary>
/// <see cref="FarmClusterFixture"/> with three worker processes; a worker that dies without a word stays listed by the
/// coordinator (its heartbeats would age out after Farm:Telemetry:WorkerTimeout), so jobs are sent to its queue.
/// </summary>
public sealed class AffinityFarmFixture : FarmClusterFixture
{
    protected override int InitialWorkers => 3;

    protected override void ConfigureCoordinator(HostApplicationBuilder builder)
    {
        builder.Services.Configure<TelemetryOptions>(o => o.WorkerTimeout = TimeSpan.FromMinutes(10));
        // Affinity is off by default (Farm:Coordinator:AffinityWait 0): on, with the wait the bench measures.
        builder.Services.Configure<CoordinatorOptions>(o => o.AffinityWait = TimeSpan.FromSeconds(2));
    }
}

/// <summary>
/// Cache-affinity dispatch (docs/architecture.md, "A build, step by step", 6) through one coordinator (Redis,
/// RabbitMQ) and three worker processes: which worker built each step comes from the build's events, the bytes each
/// worker fetched from its heartbeats (the <c>farm_worker_bytes_downloaded</c> counter).
/// </summary>
[Collection(FarmClusterCollection.Name)]
public sealed class AffinityTests(AffinityFarmFixture farm) : IClassFixture<AffinityFarmFixture>
{
    private static readonly TimeSpan StepWait = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_chain_of_run_steps_stays_on_the_worker_holding_its_parents_and_none_of_its_layers_is_fetched()
    {
        await WorkersListedAsync();
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE}
            RUN head -c 300000 /dev/urandom > /1 && echo {{Guid.NewGuid():N}} >> /1
            RUN head -c 300000 /dev/urandom > /2
            RUN head -c 300000 /dev/urandom > /3
            RUN head -c 300000 /dev/urandom > /4
            RUN head -c 300000 /dev/urandom > /5
            """;
        var before = await DownloadedAsync();

        var steps = Steps(await BuildAsync(dockerfile));

        Assert.Equal(5, steps.Count);
        Assert.All(steps, s => Assert.False(s.Cached));
        // From the second step on, a worker holds the parents: the one that ran the first step (it keeps the blob of
        // what it built).
        var chain = steps[0].Worker;
        Assert.All(steps.Skip(1), s => Assert.Equal(chain, s.Worker));
        Assert.All(steps.Skip(1), s => Assert.Equal(WorkerHosting.AffinityQueueName(chain), farm.SentToWorker[s.JobId!.Value]));

        var after = await DownloadedAsync();
        // No layer of the chain was fetched: the chain's worker had each one from its own build, and fetched at most
        // the base; the others fetched nothing.
        Assert.InRange(after[chain] - before[chain], 0, farm.Store.BaseLayer.Size);
        foreach (var idle in after.Keys.Where(w => w != chain))
        {
            Assert.Equal(before[idle], after[idle]);
        }
    }

    [Fact]
    public async Task A_job_whose_preferred_worker_is_busy_with_a_job_sent_to_it_goes_to_another_worker()
    {
        await WorkersListedAsync();
        var prefix = Prefix();
        var holder = Steps(await BuildAsync(prefix))[1].Worker;

        // The holder's only slot: a step on the same parents that waits for the test.
        var gate = FreePorts.Tcp();
        var gated = farm.Coordinator.Builds.Submit(await farm.SubmissionAsync(prefix + GatedStep(gate), Files, [], entitlements: [Entitlements.NetworkHost]));
        var busy = farm.Workers.Single(w => w.Name == holder);
        await Wait.UntilAsync(async () => (await busy.ContainersAsync()).Count > 0, StepWait,
            () => $"the gated step to run on {holder}, the worker holding its parents" + farm.Diagnostics());

        var other = Steps(await BuildAsync(prefix + "RUN echo other > /other\n"));

        // The coordinator knows the holder's slot is taken by the job it sent there: another worker built this one at
        // once, and the gated build still runs.
        Assert.NotEqual(WorkerHosting.AffinityQueueName(holder), farm.SentToWorker.GetValueOrDefault(other[2].JobId!.Value));
        Assert.NotEqual(holder, other[2].Worker);
        Assert.False(gated.IsDone);

        await LoopbackGate.AnsweringAsync(gate, () => Wait.UntilAsync(() => gated.IsDone, StepWait, () => "the gated build to end" + farm.Diagnostics()));
        Assert.IsType<BuildFinished>(gated.End);
        Assert.Equal(holder, Steps(gated)[2].Worker);
    }

    [Fact]
    public async Task Jobs_on_a_killed_workers_queue_are_built_by_the_others()
    {
        await WorkersListedAsync();
        var prefix = Prefix();
        var holder = Steps(await BuildAsync(prefix))[1].Worker;
        var victim = farm.Workers.Single(w => w.Name == holder);

        // One job runs from the holder's queue when it dies; the next comes while it is dead.
        var gate = FreePorts.Tcp();
        var gated = farm.Coordinator.Builds.Submit(await farm.SubmissionAsync(prefix + GatedStep(gate), Files, [], entitlements: [Entitlements.NetworkHost]));
        await Wait.UntilAsync(async () => (await victim.ContainersAsync()).Count > 0, StepWait,
            () => $"the gated step to run on {holder}, the worker holding its parents" + farm.Diagnostics());
        await victim.KillAsync();
        var late = farm.Coordinator.Builds.Submit(await farm.SubmissionAsync(prefix + "RUN echo late > /late\n", Files, []));

        await LoopbackGate.AnsweringAsync(gate, () => Wait.UntilAsync(() => gated.IsDone && late.IsDone, StepWait,
            () => "both builds to end on the other workers" + farm.Diagnostics()));
        Assert.IsType<BuildFinished>(gated.End);
        Assert.IsType<BuildFinished>(late.End);
        // The gated job was taken from the dead worker's queue to the farm's queue by RabbitMQ (its expiration and
        // dead-letter exchange): nothing told the coordinator to send it again.
        Assert.Equal(WorkerHosting.AffinityQueueName(holder), farm.SentToWorker[Steps(gated)[2].JobId!.Value]);
        Assert.Single(farm.JobsOf(gated.BuildId), j => j.StepId == Steps(gated)[2].StepId);
        Assert.NotEqual(holder, Steps(gated)[2].Worker);
        Assert.NotEqual(holder, Steps(late)[2].Worker);

        // The holder back, with its layer store, for the other tests.
        await farm.StopWorkerAsync(victim);
        farm.StartWorker(holder);
        await farm.WaitForWorkersAsync(3);
    }

    private static readonly Dictionary<string, string> Files = new() { ["unused.txt"] = "-\n" };

    /// <summary>Two steps of a fresh chain: whoever runs the second holds the first's layer, which no other worker has.</summary>
    private static string Prefix() =>
        $$"""
        ARG BASE
        FROM ${BASE}
        RUN echo {{Guid.NewGuid():N}} > /a
        RUN head -c 200000 /dev/urandom > /b

        """;

    private static string GatedStep(int port) =>
        $"RUN --network=host echo started; until wget -q -O /dev/null http://127.0.0.1:{port}/; do sleep 0.2; done; echo {Guid.NewGuid():N} > /gate\n";

    private async Task<BuildRecord> BuildAsync(string dockerfile)
    {
        var record = await farm.Coordinator.BuildAsync(await farm.SubmissionAsync(dockerfile, Files, []), farm.Diagnostics);
        Assert.True(record.End is BuildFinished, FarmCoordinator.Describe(record));
        return record;
    }

    private static List<StepOutcome> Steps(BuildRecord record) =>
        [.. record.Events.OfType<StepFinished>().Select(s => s.Outcome).OrderBy(o => o.Started)];

    /// <summary>Waits until the coordinator lists every running worker with its affinity queue: only then may it prefer one.</summary>
    private Task WorkersListedAsync() =>
        Wait.UntilAsync(
            () => farm.Workers.All(p => farm.Coordinator.Workers.Any(w => w.Name == p.Name && w.AffinityQueue == WorkerHosting.AffinityQueueName(p.Name))),
            TimeSpan.FromSeconds(60),
            () => "a heartbeat naming its affinity queue from every worker" + farm.Diagnostics());

    /// <summary>The bytes each running worker fetched, from a heartbeat each sent after this call.</summary>
    private async Task<Dictionary<string, long>> DownloadedAsync()
    {
        var since = DateTimeOffset.UtcNow;
        var names = farm.Workers.Select(w => w.Name).ToHashSet();
        await Wait.UntilAsync(
            () => names.All(n => farm.Coordinator.Workers.Any(w => w.Name == n && w.LastHeartbeat > since)),
            TimeSpan.FromSeconds(60),
            () => "a fresh heartbeat from every worker" + farm.Diagnostics());
        return farm.Coordinator.Workers.Where(w => names.Contains(w.Name)).ToDictionary(w => w.Name, w => w.BytesDownloaded);
    }
}
