using Farm.Contracts;
using Farm.Coordinator.Dispatch;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Workers;

/// <summary>
/// Feeds the workers' heartbeats into this coordinator's <see cref="WorkerRegistry"/>. Every coordinator needs every
/// heartbeat, so each consumes from a temporary queue of its own (like the log consumer), not a shared one. With auth
/// on, only heartbeats the farm's own users published (<see cref="JobResultSenders"/>).
/// </summary>
public sealed class WorkerHeartbeatConsumer(WorkerRegistry registry, JobResultSenders senders, ILogger<WorkerHeartbeatConsumer> logger) : IConsumer<WorkerHeartbeat>
{
    public const string QueueName = "farm-coordinator-heartbeats";

    public Task Consume(ConsumeContext<WorkerHeartbeat> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (senders.Admits(context, "A worker heartbeat", logger))
        {
            registry.Record(context.Message);
        }

        return Task.CompletedTask;
    }
}
