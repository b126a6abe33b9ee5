using Farm.Contracts;
using MassTransit;

namespace Farm.Coordinator.Workers;

/// <summary>
/// Feeds the workers' heartbeats into this coordinator's <see cref="WorkerRegistry"/>. Every coordinator needs every
/// heartbeat, so each consumes from a temporary queue of its own (like the log consumer), not a shared one.
/// </summary>
public sealed class WorkerHeartbeatConsumer(WorkerRegistry registry) : IConsumer<WorkerHeartbeat>
{
    public const string QueueName = "farm-coordinator-heartbeats";

    public Task Consume(ConsumeContext<WorkerHeartbeat> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        registry.Record(context.Message);
        return Task.CompletedTask;
    }
}
