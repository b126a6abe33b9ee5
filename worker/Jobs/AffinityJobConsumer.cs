using Farm.Contracts;
using MassTransit;

namespace Farm.Worker.Jobs;

/// <summary>
/// Consumes <see cref="BuildLayer"/> jobs from this worker's own queue (<see cref="WorkerHosting.AffinityQueueName"/>),
/// where a coordinator sends a job whose parent layers this worker already holds extracted (docs/architecture.md, "A
/// build, step by step", 6). The job runs like one from the farm's queue, within the same slots; one that finds no
/// slot free within its affinity wait (<see cref="WaitHeader"/>, counted from when it was sent) goes to the farm's
/// queue instead. A job nobody takes from this queue in time (the worker busy, or dead) expires there and RabbitMQ
/// dead-letters it to the farm's queue.
/// </summary>
public sealed class AffinityJobConsumer(BuildLayerConsumer jobs) : IConsumer<BuildLayer>
{
    /// <summary>How long (milliseconds) the sender was willing to wait for this worker; absent: not at all.</summary>
    public const string WaitHeader = "Farm-Affinity-Wait";

    public Task Consume(ConsumeContext<BuildLayer> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return jobs.ConsumeAsync(context, Wait(context.Headers));
    }

    /// <summary>The affinity wait a job was sent with; zero when it carries none.</summary>
    internal static TimeSpan Wait(Headers headers) =>
        BuildLayerConsumer.PositiveHeader(headers, WaitHeader) is { } ms ? TimeSpan.FromMilliseconds(ms) : TimeSpan.Zero;
}

/// <summary>The affinity queue this worker process consumes, named in its heartbeats; not registered where it has none (the local farm).</summary>
public sealed record AffinityQueue(string Name);
