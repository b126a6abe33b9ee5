using Farm.Coordinator.Builds;
using Farm.Coordinator.Grains;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>A cluster whose tests start their own coordinators and workers.</summary>
public sealed class BareFarmClusterFixture : FarmClusterFixture
{
    protected override int InitialWorkers => 0;

    protected override bool InitialCoordinator => false;
}

/// <summary>What survives a coordinator or a worker going away (docs/architecture.md, "Failure model").</summary>
[Collection(FarmClusterCollection.Name)]
public sealed class FailoverTests(BareFarmClusterFixture farm) : IClassFixture<BareFarmClusterFixture>
{
    [Fact]
    public async Task A_build_whose_coordinator_stops_mid_run_is_finished_by_another_coordinator_on_the_same_redis_and_vhost()
    {
        var cluster = FarmClusterFixture.NewClusterId();
        await using var first = await farm.StartCoordinatorAsync(cluster, TimeSpan.FromSeconds(3));
        await using var second = await farm.StartCoordinatorAsync(cluster, TimeSpan.FromSeconds(3));
        var worker = farm.StartWorker("worker-f");
        await farm.WaitForWorkersAsync(1);
        var tag = farm.Context.Tag("failover:1");
        var submit = await farm.SubmissionAsync(
            $$"""
            ARG BASE
            FROM ${BASE}
            RUN sleep 8 && echo slept-{{Guid.NewGuid():N}} > /slept
            COPY hello.txt /hello.txt
            CMD ["cat","/hello.txt"]
            """,
            new Dictionary<string, string> { ["hello.txt"] = "carried on\n" },
            [tag]);

        // The first coordinator accepted the build and runs it: its RUN sleep is running on the worker.
        var onFirst = first.Builds.Submit(submit);
        await Wait.UntilAsync(() => farm.JobsOf(submit.BuildId).Count == 1, TimeSpan.FromMinutes(2),
            () => "the first coordinator to dispatch the RUN sleep job; events: " + FarmCoordinator.Describe(onFirst) + farm.Diagnostics());
        await first.StopAsync();

        // Nobody asks the second coordinator about the build: the build grain's reminder resumes it there.
        BuildRecord? onSecond = null;
        await Wait.UntilAsync(() => second.Builds.Registry.TryGet(submit.BuildId, out onSecond), TimeSpan.FromMinutes(2),
            () => "the second coordinator to resume the build" + farm.Diagnostics());
        await Wait.UntilAsync(() => onSecond!.IsDone, TimeSpan.FromMinutes(4),
            () => "the resumed build to end; events: " + FarmCoordinator.Describe(onSecond!) + farm.Diagnostics());

        // The first coordinator gave the build up; the second one finished and pushed it.
        Assert.Equal("FARM4212", Assert.IsType<BuildFailed>(onFirst.End).Code);
        Assert.DoesNotContain(onFirst.Events.OfType<StepFinished>(), s => s.Outcome.Display.StartsWith("RUN sleep", StringComparison.Ordinal));
        Assert.Equal(BuildStatus.Succeeded, onSecond!.Status);
        var resumed = Assert.Single(onSecond.Events.OfType<BuildResumed>());
        Assert.Equal(2, resumed.Run);
        var finished = Assert.IsType<BuildFinished>(onSecond.End);
        Assert.Equal(finished.ImageDigest, await SubmitContext.RegistryDigestAsync(tag));

        // The status any coordinator reports comes from the build grain: succeeded, with the digest and the steps.
        var state = await second.Grains.GetGrain<IBuildGrain>(submit.BuildId).GetAsync();
        Assert.NotNull(state);
        Assert.Equal(BuildStatus.Succeeded, state.Status);
        Assert.Equal(finished.ImageDigest, state.ImageDigest);
        Assert.Equal(2, state.Runs);
        Assert.Equal(["built", "built"], state.Steps.Select(s => s.Status));
        var status = await second.Builds.GetAsync(submit.BuildId, CancellationToken.None);
        Assert.Equal(BuildStatus.Succeeded, status.Status);
        await farm.StopWorkerAsync(worker);
    }

    [Fact]
    public async Task A_new_worker_with_an_empty_layer_store_builds_on_the_layers_another_worker_built()
    {
        await using var coordinator = await farm.StartCoordinatorAsync(FarmClusterFixture.NewClusterId());
        var first = farm.StartWorker("worker-g");
        await farm.WaitForWorkersAsync(1);
        var salt = Guid.NewGuid().ToString("N")[..12];
        var stages = $$"""
            ARG BASE
            FROM ${BASE} AS tools
            RUN echo tools-{{salt}} > /tools
            FROM ${BASE} AS app
            COPY --from=tools /tools /tools
            RUN echo app > /app
            """;
        var files = new Dictionary<string, string> { ["x"] = "x\n" };
        var built = await coordinator.BuildAsync(await farm.SubmissionAsync(stages, files, []), farm.Diagnostics);
        Assert.Equal(BuildStatus.Succeeded, built.Status);
        Assert.All(built.Events.OfType<StepFinished>(), s => Assert.Equal("worker-g", s.Outcome.Worker));

        // The first worker goes away; a new one starts with an empty layer store of its own.
        await farm.StopWorkerAsync(first);
        var fresh = farm.StartWorker("worker-h");
        await farm.WaitForWorkersAsync(1);
        var tag = farm.Context.Tag("reuse:1");
        var extended = stages + "\nRUN cat /tools /app > /both\nCMD [\"cat\",\"/both\"]\n";
        var submit = await farm.SubmissionAsync(extended, files, [tag]);
        var record = await coordinator.BuildAsync(submit, farm.Diagnostics);

        Assert.Equal(BuildStatus.Succeeded, record.Status);
        var steps = record.Events.OfType<StepFinished>().Select(s => s.Outcome).ToList();
        Assert.Equal(["worker-g", "worker-g", "worker-g"], steps.Where(s => s.Cached).Select(s => s.Worker));
        var last = Assert.Single(steps, s => !s.Cached);
        Assert.Equal("worker-h", last.Worker);
        Assert.Single(farm.JobsOf(submit.BuildId));
        // The new worker fetched the parents the first one built from the blob store: the RUN saw their files.
        Assert.Equal($"tools-{salt}\napp\n", await farm.PodmanRunAsync(tag));
        await farm.StopWorkerAsync(fresh);
    }
}
