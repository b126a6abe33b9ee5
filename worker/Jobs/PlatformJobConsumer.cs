using Farm.Contracts;
using MassTransit;

namespace Farm.Worker.Jobs;

/// <summary>
/// Consumes <see cref="BuildLayer"/> jobs from the queue of a platform other than linux/amd64
/// (<see cref="FarmPlatforms.QueueName"/>), which only workers that run it consume (docs/architecture.md, "Platforms").
/// The job runs like one from the farm's queue, within the same slots; one that finds no slot free goes back to its
/// platform's queue, never to the farm's.
/// </summary>
public sealed class PlatformJobConsumer(BuildLayerConsumer jobs) : IConsumer<BuildLayer>
{
    public Task Consume(ConsumeContext<BuildLayer> context) => jobs.ConsumeAsync(context, affinityWait: null);
}
