using Farm.Contracts;
using Farm.Coordinator.Grains;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Routes the workers' results to the layer grain of the job's cache key. Coordinators compete on one queue: any
/// silo may take a result, Orleans delivers it to the grain wherever it lives. The message is acknowledged after the
/// grain took it, so a result is not lost when this silo dies in between.
/// </summary>
public sealed partial class LayerResultsConsumer(IGrainFactory grains, ILogger<LayerResultsConsumer> logger)
    : IConsumer<LayerBuilt>, IConsumer<LayerBuildFailed>
{
    /// <summary>The queue the coordinators share for job results.</summary>
    public const string QueueName = "farm-coordinator-results";

    public Task Consume(ConsumeContext<LayerBuilt> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var built = context.Message;
        return grains.GetGrain<ILayerGrain>(built.CacheKey).OnJobBuiltAsync(built.JobId, JobSuccess.From(built));
    }

    public Task Consume(ConsumeContext<LayerBuildFailed> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var failed = context.Message;
        if (string.IsNullOrEmpty(failed.CacheKey))
        {
            // A worker from before LayerBuildFailed.CacheKey: nothing says which grain waits; its job runs into the
            // grain's deadline (FARM4006) instead.
            LogUnroutable(logger, failed.JobId, failed.Worker, failed.Code);
            return Task.CompletedTask;
        }

        return grains.GetGrain<ILayerGrain>(failed.CacheKey).OnJobFailedAsync(failed.JobId, JobFailure.From(failed));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Failure {Code} of job {JobId} from {Worker} carries no cache key and cannot be routed; upgrade the worker")]
    private static partial void LogUnroutable(ILogger logger, Guid jobId, string worker, string code);
}
