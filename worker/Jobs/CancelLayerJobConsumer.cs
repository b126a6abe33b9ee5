using Farm.Contracts;
using MassTransit;

namespace Farm.Worker.Jobs;

/// <summary>Stops a job this worker runs (or will be handed) when every build that awaited it was cancelled.</summary>
public sealed class CancelLayerJobConsumer(RunningJobs jobs) : IConsumer<CancelLayerJob>
{
    public Task Consume(ConsumeContext<CancelLayerJob> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        jobs.Cancel(context.Message.JobId);
        return Task.CompletedTask;
    }
}
