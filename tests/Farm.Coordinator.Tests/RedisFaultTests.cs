using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Grains;
using Farm.Oci.Net;
using Farm.Testing;
using Orleans.Core.Internal;
using Orleans.Runtime.Placement;
using Xunit.Abstractions;

namespace Farm.Coordinator.Tests;

/// <summary>
/// Faults the farm must ride out (docs/architecture.md, "Failure model"): Redis coming back empty, a coordinator
/// killed, and a build grain moving while the silo running its build lives. Coordinators here are processes
/// (<c>dotnet Farm.Coordinator.dll</c>) on a redis-server of the test's own, so the shared Redis is never touched.
/// </summary>
[Collection(FarmClusterCollection.Name)]
public sealed class RedisFaultTests(BareFarmClusterFixture farm, ITestOutputHelper output) : IClassFixture<BareFarmClusterFixture>
{
    [Fact]
    public async Task A_build_outlives_redis_restarting_empty_and_then_its_coordinator_being_killed()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = FarmClusterFixture.NewClusterId();
        await using var first = StartCoordinator(redis, cluster, "first");
        await using var second = StartCoordinator(redis, cluster, "second");
        await first.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        await second.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        var worker = farm.StartWorker("worker-r");
        await farm.WaitForWorkersAsync(1);
        using var firstApi = Api(first);
        using var secondApi = Api(second);

        // The RUN step waits until the test answers on a port: it runs through everything below.
        var gate = FreePorts.Tcp();
        var tag = farm.Context.Tag("redis-loss:1");
        var submit = await farm.SubmissionAsync(
            $$"""
            ARG BASE
            FROM ${BASE}
            RUN --network=host echo started; until wget -q -O /dev/null http://127.0.0.1:{{gate}}/; do sleep 0.2; done; echo {{Guid.NewGuid():N}} > /gate
            COPY hello.txt /hello.txt
            CMD ["cat","/hello.txt"]
            """,
            new Dictionary<string, string> { ["hello.txt"] = "outlived redis\n" },
            [tag],
            entitlements: [Entitlements.NetworkHost]);
        using (var accepted = await firstApi.PostAsJsonAsync("builds", submit))
        {
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        }

        await Wait.UntilAsync(async () => (await worker.ContainersAsync()).Count > 0, TimeSpan.FromMinutes(2),
            () => "the RUN step to run on the worker" + Diagnostics(redis, first, second));

        // Redis goes away: neither coordinator can serve, and /healthz says so.
        var sinceStop = Stopwatch.StartNew();
        await redis.StopAsync();
        await Wait.UntilAsync(async () => await first.HealthAsync() == 503 && await second.HealthAsync() == 503, TimeSpan.FromSeconds(60),
            () => "both coordinators to answer /healthz with 503 while Redis is down" + Diagnostics(redis, first, second));

        // It comes back empty: membership, the build's state and its reminder are gone. The coordinators put them back.
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"both unhealthy {sinceStop.Elapsed.TotalSeconds:0.0} s after Redis stopped"));
        await redis.StartAgainAsync();
        await Wait.UntilAsync(async () => await first.HealthAsync() == 200 && await second.HealthAsync() == 200, TimeSpan.FromSeconds(120),
            () => "both coordinators to be healthy again after Redis came back empty" + Diagnostics(redis, first, second));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"healthy again {sinceStop.Elapsed.TotalSeconds:0.0} s after Redis stopped (restarted empty)"));

        // The coordinator that does not run the build reads it from the restored build grain.
        using (var status = await secondApi.GetAsync($"builds/{submit.BuildId}"))
        {
            Assert.Equal(HttpStatusCode.OK, status.StatusCode);
            Assert.Equal("running", (string?)(await status.Content.ReadFromJsonAsync<JsonObject>())!["status"]);
        }

        // The first coordinator dies without a word; the second takes its build over.
        var killed = Stopwatch.StartNew();
        await first.KillAsync();
        var answers = new List<HttpStatusCode>();
        await Wait.UntilAsync(async () => (await EventsAsync(secondApi, submit.BuildId, answers)).Contains("\"type\":\"BuildResumed\"", StringComparison.Ordinal), TimeSpan.FromMinutes(3),
            () => "the second coordinator to resume the build" + Diagnostics(redis, first, second));
        var takeover = killed.Elapsed;
        // While the build's grain was still registered on the dead silo, the API said "not now", never "broken".
        Assert.All(answers, a => Assert.Contains(a, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"takeover after SIGKILL (Redis restarted empty before): {takeover.TotalSeconds:0.0} s"));

        JsonObject? final = null;
        await LoopbackGate.AnsweringAsync(gate, () => Wait.UntilAsync(
            async () =>
            {
                using var response = await secondApi.GetAsync($"builds/{submit.BuildId}");
                final = response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonObject>() : null;
                return (string?)final?["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromMinutes(3),
            () => "the resumed build to end; last status: " + final?.ToJsonString() + Diagnostics(redis, first, second)));

        Assert.Equal("succeeded", (string?)final!["status"]);
        Assert.Equal((string?)final["imageDigest"], await SubmitContext.RegistryDigestAsync(tag));
        Assert.Equal("outlived redis\n", await farm.PodmanRunAsync(tag));
        await farm.StopWorkerAsync(worker);
    }

    [Fact]
    public async Task A_build_grain_that_moves_while_the_silo_running_its_build_lives_does_not_start_a_second_run()
    {
        var cluster = FarmClusterFixture.NewClusterId();
        var check = TimeSpan.FromSeconds(3);
        await using var first = await farm.StartCoordinatorAsync(cluster, check);
        await using var second = await farm.StartCoordinatorAsync(cluster, check);
        var worker = farm.StartWorker("worker-l");
        await farm.WaitForWorkersAsync(1);
        var gate = FreePorts.Tcp();
        var submit = await farm.SubmissionAsync(
            $$"""
            ARG BASE
            FROM ${BASE}
            RUN --network=host until wget -q -O /dev/null http://127.0.0.1:{{gate}}/; do sleep 0.2; done; echo {{Guid.NewGuid():N}} > /gate
            COPY hello.txt /hello.txt
            """,
            new Dictionary<string, string> { ["hello.txt"] = "once\n" },
            [],
            entitlements: [Entitlements.NetworkHost]);
        var onFirst = first.Builds.Submit(submit);
        await Wait.UntilAsync(() => farm.JobsOf(submit.BuildId).Count == 1, TimeSpan.FromMinutes(2),
            () => "the first coordinator to dispatch the RUN job" + farm.Diagnostics());

        // The build grain moves to the second silo while the first one still runs the build (as after a rebalance,
        // or a directory that lost the activation); activating there resumes nothing while the run's lease holds:
        // its silo is active and its heartbeat fresh.
        var management = second.Grains.GetGrain<IManagementGrain>(0);
        var grain = second.Grains.GetGrain<IBuildGrain>(submit.BuildId);
        await Wait.UntilAsync(
            async () =>
            {
                if (Equals(await management.GetActivationAddress(grain), second.Silo))
                {
                    return true;
                }

                RequestContext.Set(IPlacementDirector.PlacementHintKey, second.Silo);
                try
                {
                    await grain.Cast<IGrainManagementExtension>().MigrateOnIdle();
                }
                finally
                {
                    RequestContext.Clear();
                }

                return false;
            },
            TimeSpan.FromSeconds(60),
            () => "the build grain to move to the second silo" + farm.Diagnostics());
        var moved = DateTimeOffset.UtcNow;
        await grain.CheckRunAsync();

        // Three check periods: the reminder ticks on the second silo, and the run on the first keeps renewing the lease.
        await Wait.UntilAsync(async () => (await grain.GetAsync())!.Heartbeat > moved + 3 * check, TimeSpan.FromSeconds(60),
            () => "the first silo's run to go on reporting to the moved grain" + farm.Diagnostics());
        await grain.CheckRunAsync();
        var during = (await grain.GetAsync())!;
        Assert.Equal(1, during.Runs);
        Assert.Equal(first.Silo.ToParsableString(), during.Silo);
        Assert.False(second.Builds.Registry.TryGet(submit.BuildId, out _));
        Assert.Equal(0, second.Builds.RunningCount);

        await LoopbackGate.AnsweringAsync(gate, () => Wait.UntilAsync(() => onFirst.IsDone, TimeSpan.FromMinutes(2),
            () => "the build to end on the first coordinator; events: " + FarmCoordinator.Describe(onFirst) + farm.Diagnostics()));
        Assert.Equal(BuildStatus.Succeeded, onFirst.Status);
        Assert.Empty(onFirst.Events.OfType<BuildResumed>());
        // One job per layer step: nothing ran twice.
        Assert.Equal(2, farm.JobsOf(submit.BuildId).Count);
        BuildGrainStateV1? state = null;
        await Wait.UntilAsync(async () => (state = await grain.GetAsync())!.IsDone, TimeSpan.FromSeconds(30),
            () => "the grain to record the end of the build" + farm.Diagnostics());
        Assert.Equal(BuildStatus.Succeeded, state!.Status);
        Assert.Equal(1, state.Runs);
        Assert.False(second.Builds.Registry.TryGet(submit.BuildId, out _));
        await farm.StopWorkerAsync(worker);
    }

    private CoordinatorProcess StartCoordinator(RedisServer redis, string cluster, string name) =>
        CoordinatorProcess.Start(
            $"amqp://guest:guest@127.0.0.1:5672/{farm.VirtualHost}",
            0,
            farm.Store.StoreAddress,
            Path.Combine(farm.Store.Root, "redis-" + name),
            new Dictionary<string, string>
            {
                ["Farm__Coordinator__Redis"] = redis.Configuration,
                ["Farm__Builds__Entitlements__0"] = Entitlements.NetworkHost,
                ["Farm__Coordinator__ClusterId"] = cluster,
                ["Farm__Coordinator__ServiceId"] = cluster,
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Farm"] = "Information",
                // Every failing /healthz poll would log an error: the tail of the output is for what Farm did.
                ["Logging__LogLevel__Microsoft.Extensions.Diagnostics.HealthChecks"] = "None",
            });

    private static HttpClient Api(CoordinatorProcess coordinator) =>
        new() { BaseAddress = new Uri(coordinator.Url + "/"), Timeout = TimeSpan.FromSeconds(30) };

    private static async Task<string> EventsAsync(HttpClient api, Guid buildId, List<HttpStatusCode>? answers = null)
    {
        using var response = await api.GetAsync($"builds/{buildId}/events");
        answers?.Add(response.StatusCode);
        return response.IsSuccessStatusCode ? await response.Content.ReadAsStringAsync() : string.Empty;
    }

    private string Diagnostics(RedisServer redis, CoordinatorProcess first, CoordinatorProcess second) =>
        $"{Environment.NewLine}--- first coordinator:{Environment.NewLine}{first.OutputTail()}{Environment.NewLine}--- second coordinator:{Environment.NewLine}{second.OutputTail()}{Environment.NewLine}--- redis:{Environment.NewLine}{redis.OutputTail()}{farm.Diagnostics()}";
}
