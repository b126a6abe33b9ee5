using Farm.Coordinator.Grains;

namespace Farm.Coordinator.Tests;

/// <summary>The silo dispatches through RabbitMQ to worker processes.</summary>
public sealed class ClusterTests : IClassFixture<ClusterFixture>
{
    private readonly ClusterFixture _cluster;

    public ClusterTests(ClusterFixture cluster) => _cluster = cluster;

    [Fact]
    public async Task Two_independent_layers_dispatched_together_run_at_once_on_different_workers()
    {
        var requests = Enumerable.Range(0, 2).Select(i => new LayerJobRequest
        {
            BuildId = Guid.NewGuid(),
            StepId = $"stage-{i}/step-1",
            BlobStore = _cluster.Store.StoreAddress,
            Parents = [_cluster.Store.BaseLayer],
            Step = LayerStoreFixture.Run($"sleep 3 && echo {i} > /n"),
        }).ToList();

        var outcomes = await Task.WhenAll(requests.Select(r => _cluster.Grains.GetGrain<ILayerGrain>(LayerStoreFixture.NewKey()).BuildAsync(r)))
            .WaitAsync(TimeSpan.FromMinutes(3));

        Assert.All(outcomes, o => Assert.True(o.Succeeded, o.Failure?.Message + _cluster.Diagnostics()));
        var (a, b) = (outcomes[0].Success!, outcomes[1].Success!);
        Assert.NotEqual(a.Worker, b.Worker);
        Assert.Equal(["worker-a", "worker-b"], outcomes.Select(o => o.Success!.Worker).Order());
        // The workers' own reports of when each RUN executed overlap: the layers were built in parallel.
        Assert.True(a.Timings.ExecutionStart < b.Timings.ExecutionEnd && b.Timings.ExecutionStart < a.Timings.ExecutionEnd,
            $"execution intervals do not overlap: {a.Timings.ExecutionStart:O}..{a.Timings.ExecutionEnd:O} and {b.Timings.ExecutionStart:O}..{b.Timings.ExecutionEnd:O}");
        Assert.NotEqual(a.Layer!.Digest, b.Layer!.Digest);
    }
}
