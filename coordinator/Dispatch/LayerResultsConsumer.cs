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
/// <remarks>
/// With auth on, a result counts only when its AMQP <c>user_id</c> (which RabbitMQ checks against the publishing
/// connection) is one of the farm's own users (<see cref="JobResultSenders"/>); any other is logged (FARM4250) and
/// acknowledged without reaching a grain.
/// </remarks>
public sealed partial class LayerResultsConsumer(IGrainFactory grains, JobResultSenders senders, ILogger<LayerResultsConsumer> logger)
    : IConsumer<LayerBuilt>, IConsumer<LayerBuildFailed>
{
    /// <summary>The queue the coordinators share for job results.</summary>
    public const string QueueName = "farm-coordinator-results";

    public Task Consume(ConsumeContext<LayerBuilt> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var built = context.Message;
        if (!Believed(context, nameof(LayerBuilt), built.JobId, built.CacheKey))
        {
            return Task.CompletedTask;
        }

        return grains.GetGrain<ILayerGrain>(built.CacheKey).OnJobBuiltAsync(built.JobId, JobSuccess.From(built));
    }

    public Task Consume(ConsumeContext<LayerBuildFailed> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var failed = context.Message;
        if (!Believed(context, nameof(LayerBuildFailed), failed.JobId, failed.CacheKey))
        {
            return Task.CompletedTask;
        }

        if (string.IsNullOrEmpty(failed.CacheKey))
        {
            // A worker from before LayerBuildFailed.CacheKey: nothing says which grain waits; its job runs into the
            // grain's deadline (FARM4006) instead.
            LogUnroutable(logger, failed.JobId, failed.Worker, failed.Code);
            return Task.CompletedTask;
        }

        return grains.GetGrain<ILayerGrain>(failed.CacheKey).OnJobFailedAsync(failed.JobId, JobFailure.From(failed));
    }

    private bool Believed(ConsumeContext context, string result, Guid jobId, string? cacheKey)
    {
        var user = JobResultSenders.UserOf(context);
        if (senders.Accepts(user))
        {
            return true;
        }

        var refused = new JobResultNotAuthorizedException(result, jobId, string.IsNullOrEmpty(user) ? "the message has no user_id property" : $"the AMQP user '{user}' is not one of the farm's");
        LogNotAuthorized(logger, cacheKey ?? "(none)", refused.Message);
        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Failure {Code} of job {JobId} from {Worker} carries no cache key and cannot be routed; upgrade the worker")]
    private static partial void LogUnroutable(ILogger logger, Guid jobId, string worker, string code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job result for layer {CacheKey} dropped: {Reason}")]
    private static partial void LogNotAuthorized(ILogger logger, string cacheKey, string reason);
}
