using System.Net;
using System.Net.Sockets;
using System.Text;
using Farm.Contracts;
using Farm.Worker.Jobs;
using MassTransit;

using Farm.Oci.Net;
using Farm.Testing;

namespace Farm.Worker.Tests;

/// <summary>
/// Two worker processes competing on one RabbitMQ queue: jobs spread over both, and a job whose worker is killed
/// mid-step is delivered again and finished by the other one.
/// </summary>
public sealed class WorkerClusterTests(WorkerClusterFixture cluster) : IClassFixture<WorkerClusterFixture>
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Jobs_spread_over_both_workers_and_each_comes_back_built()
    {
        var jobs = Enumerable.Range(0, 8)
            .Select(i => cluster.Store.Job(ExecutorFixture.Run($"echo {i} > /file{i}")))
            .ToList();

        foreach (var job in jobs)
        {
            await cluster.Bus.Publish(job);
        }

        var ids = jobs.Select(j => j.JobId).ToHashSet();
        await Wait.UntilAsync(
            () => Task.FromResult(ids.All(id => cluster.Built.Any(b => b.JobId == id)) || cluster.Failed.Any(f => ids.Contains(f.JobId))),
            JobTimeout,
            () => $"LayerBuilt for all {ids.Count} jobs; got {cluster.Built.Count(b => ids.Contains(b.JobId))}" + cluster.Diagnostics());

        Assert.Empty(cluster.Failed.Where(f => ids.Contains(f.JobId)).Select(f => f.Message));
        var built = cluster.Built.Where(b => ids.Contains(b.JobId)).ToList();
        Assert.Equal(ids.Count, built.Select(b => b.JobId).Distinct().Count());
        Assert.Equal(["worker-a", "worker-b"], built.Select(b => b.Worker).Distinct().Order(StringComparer.Ordinal).ToList());
        Assert.All(built, b => Assert.NotNull(b.Layer));
        Assert.Equal(ids.Count, built.Select(b => b.Layer!.Digest).Distinct().Count());
    }

    [Fact]
    public async Task A_job_whose_worker_is_killed_mid_step_is_finished_by_the_other_worker()
    {
        // The step waits until the test answers on a port; it does not answer before the first worker is dead.
        var port = FreePorts.Tcp();
        var job = cluster.Store.Job(ExecutorFixture.Run(
            $"echo started; until wget -q -O /dev/null http://127.0.0.1:{port}/; do sleep 0.2; done; touch /done",
            r => r with { Network = "host" })); // the test answers on this machine's loopback
        await cluster.Bus.Publish(job);
        var victim = await RunningAsync(job);
        var survivor = cluster.Workers.Single(w => w != victim);

        await victim.KillAsync();
        Assert.DoesNotContain(cluster.Built, b => b.JobId == job.JobId);
        // The dead worker's container goes on waiting as an orphan with its overlay mounted: a restarted worker
        // removes both before it takes jobs.
        Assert.NotEmpty(await victim.ContainersAsync());
        var restarted = await cluster.RestartAsync(victim);
        Assert.Empty(await restarted.ContainersAsync());
        Assert.Empty(Mounts.Under(Path.Combine(restarted.StateDirectory, "ov")));

        await LoopbackGate.AnsweringAsync(port, () => Wait.UntilAsync(
            () => Task.FromResult(cluster.Built.Any(b => b.JobId == job.JobId) || cluster.Failed.Any(f => f.JobId == job.JobId)),
            JobTimeout,
            () => $"the job to be redelivered to {survivor.Name} and built" + cluster.Diagnostics()));

        Assert.Empty(cluster.Failed.Where(f => f.JobId == job.JobId).Select(f => f.Message));
        var built = Assert.Single(cluster.Built, b => b.JobId == job.JobId);
        Assert.Equal(survivor.Name, built.Worker);
        var entries = await cluster.Store.ReadLayerAsync(Assert.IsType<LayerRef>(built.Layer));
        Assert.Contains("done", entries.Select(e => e.Name));
    }

    [Fact]
    public async Task A_job_whose_worker_is_stopped_mid_step_is_handed_back_and_finished_by_the_other_worker()
    {
        var port = FreePorts.Tcp();
        var job = cluster.Store.Job(ExecutorFixture.Run(
            $"echo started; until wget -q -O /dev/null http://127.0.0.1:{port}/; do sleep 0.2; done; touch /done",
            r => r with { Network = "host" })); // the test answers on this machine's loopback
        await cluster.Bus.Publish(job);
        var victim = await RunningAsync(job);
        var survivor = cluster.Workers.Single(w => w != victim);

        // SIGTERM, as a deployment stops a worker: the step is killed, the job handed back, the process exits.
        await victim.StopAsync();
        Assert.Contains("handed back", victim.OutputTail(), StringComparison.Ordinal);
        Assert.Empty(await victim.ContainersAsync());
        Assert.DoesNotContain(cluster.Failed, f => f.JobId == job.JobId);
        await cluster.RestartAsync(victim);

        await LoopbackGate.AnsweringAsync(port, () => Wait.UntilAsync(
            () => Task.FromResult(cluster.Built.Any(b => b.JobId == job.JobId) || cluster.Failed.Any(f => f.JobId == job.JobId)),
            JobTimeout,
            () => $"the handed-back job to be built by {survivor.Name}" + cluster.Diagnostics()));

        Assert.Empty(cluster.Failed.Where(f => f.JobId == job.JobId).Select(f => f.Message));
        Assert.Equal(survivor.Name, Assert.Single(cluster.Built, b => b.JobId == job.JobId).Worker);
        // It ran twice: on the stopped worker, then on the survivor.
        Assert.Equal(2, cluster.Logs.Count(l => l.JobId == job.JobId && l.Line == "started"));
    }

    [Fact]
    public async Task A_job_whose_last_allowed_delivery_dies_with_its_worker_fails_instead_of_looping()
    {
        // The job arrives as its third and last allowed delivery (Farm:Worker:MaxDeliveries, 3): as if two workers
        // had already died running it.
        var job = cluster.Store.Job(ExecutorFixture.Run("echo started; while true; do sleep 1; done"));
        await cluster.Bus.Publish(job, c => c.Headers.Set(BuildLayerConsumer.DeliveryHeader, "3"));
        var victim = await RunningAsync(job);
        var survivor = cluster.Workers.Single(w => w != victim);

        await victim.KillAsync();
        await cluster.RestartAsync(victim);
        await Wait.UntilAsync(
            () => Task.FromResult(cluster.Failed.Any(f => f.JobId == job.JobId) || cluster.Built.Any(b => b.JobId == job.JobId)),
            JobTimeout,
            () => "the redelivered job to be failed with FARM3006" + cluster.Diagnostics());

        var failed = Assert.Single(cluster.Failed, f => f.JobId == job.JobId);
        Assert.Equal(FarmErrorCodes.DeliveriesExhausted, failed.Code);
        Assert.False(failed.Retryable);
        Assert.StartsWith("FARM3006: ", failed.Message, StringComparison.Ordinal);
        Assert.Equal(survivor.Name, failed.Worker);
        Assert.DoesNotContain(cluster.Built, b => b.JobId == job.JobId);
        // Not run again: the only 'started' is the killed worker's.
        Assert.Single(cluster.Logs, l => l.JobId == job.JobId && l.Line == "started");
    }

    /// <summary>Waits until the job's step printed 'started' and runs in a runc container of one worker; that worker.</summary>
    private async Task<WorkerProcess> RunningAsync(BuildLayer job)
    {
        await Wait.UntilAsync(
            () => Task.FromResult(cluster.Logs.Any(l => l.JobId == job.JobId && l.Line == "started")),
            JobTimeout,
            () => "the step to print 'started'" + cluster.Diagnostics());
        WorkerProcess? running = null;
        await Wait.UntilAsync(
            async () =>
            {
                foreach (var w in cluster.Workers)
                {
                    if ((await w.ContainersAsync()).Count > 0)
                    {
                        running = w;
                    }
                }

                return running is not null;
            },
            TimeSpan.FromSeconds(30),
            () => "a runc container of the job in one worker's state directory" + cluster.Diagnostics());
        return running!;
    }
}
