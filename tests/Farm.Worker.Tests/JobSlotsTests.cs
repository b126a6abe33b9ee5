using Farm.Worker.Jobs;

namespace Farm.Worker.Tests;

/// <summary>The slots a worker's two job endpoints (the farm's queue, its affinity queue) share.</summary>
public sealed class JobSlotsTests
{
    [Fact]
    public async Task Jobs_from_both_queues_together_never_hold_more_than_the_slots()
    {
        using var slots = new JobSlots(2);
        using var shared = await slots.TakeAsync(Timeout.InfiniteTimeSpan, null, CancellationToken.None);
        using var affinity = await slots.TakeAsync(TimeSpan.Zero, TimeSpan.FromSeconds(2), CancellationToken.None);

        Assert.NotNull(shared);
        Assert.NotNull(affinity);
        Assert.Null(await slots.TakeAsync(TimeSpan.Zero, TimeSpan.FromSeconds(2), CancellationToken.None));
    }

    [Fact]
    public async Task A_job_of_the_farms_queue_waits_only_as_long_as_the_affinity_jobs_filling_the_slots_were_willing_to()
    {
        using var slots = new JobSlots(2);
        Assert.Equal(Timeout.InfiniteTimeSpan, slots.SharedJobWait);

        var first = await slots.TakeAsync(TimeSpan.Zero, TimeSpan.FromSeconds(2), CancellationToken.None);
        var second = await slots.TakeAsync(TimeSpan.Zero, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(TimeSpan.FromSeconds(5), slots.SharedJobWait);

        second!.Dispose();
        Assert.Equal(TimeSpan.FromSeconds(2), slots.SharedJobWait);
        first!.Dispose();
        first.Dispose();
        Assert.Equal(Timeout.InfiniteTimeSpan, slots.SharedJobWait);

        // Released once, however often disposed: both slots are free again, and no more.
        using var a = await slots.TakeAsync(TimeSpan.Zero, null, CancellationToken.None);
        using var b = await slots.TakeAsync(TimeSpan.Zero, null, CancellationToken.None);
        Assert.NotNull(b);
        Assert.Null(await slots.TakeAsync(TimeSpan.Zero, null, CancellationToken.None));
    }

    [Fact]
    public void An_affinity_job_waits_for_what_is_left_of_its_wait_since_it_was_sent()
    {
        var wait = TimeSpan.FromSeconds(2);
        Assert.Equal(wait, BuildLayerConsumer.Remaining(wait, null));
        Assert.Equal(TimeSpan.Zero, BuildLayerConsumer.Remaining(wait, DateTime.UtcNow - TimeSpan.FromSeconds(3)));
        Assert.InRange(BuildLayerConsumer.Remaining(wait, DateTime.UtcNow - TimeSpan.FromSeconds(1)), TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void A_worker_name_becomes_a_queue_name_rabbitmq_and_masstransit_accept()
    {
        Assert.Equal("farm-build-layer.worker-1", WorkerHosting.AffinityQueueName("worker-1"));
        Assert.Equal("farm-build-layer.build_host_7", WorkerHosting.AffinityQueueName("build host/7"));
    }
}
