using System.Collections.Concurrent;
using System.Globalization;
using Farm.Contracts;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Workers;
using Farm.Worker.Jobs;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Puts a <see cref="BuildLayer"/> job on its way (docs/architecture.md, "A build, step by step", 6): to the affinity
/// queue of the live worker holding the most bytes of its input layers extracted, else to the farm's queue, where any
/// free worker takes it. A job sent to a worker's queue carries <see cref="CoordinatorOptions.AffinityWait"/> as its
/// AMQP expiration: if that worker does not take it in time (busy, or dead), RabbitMQ dead-letters it to the farm's
/// queue; no timer here, so nothing is lost when this coordinator dies meanwhile.
/// </summary>
public sealed partial class JobDispatcher(
    IBus bus,
    WorkerRegistry workers,
    ILayerLocality locality,
    IOptions<CoordinatorOptions> options,
    ILogger<JobDispatcher> logger)
{
    /// <summary>How long a job sent to a worker's queue counts against it at most (its result may never come here).</summary>
    private static readonly TimeSpan SentHorizon = TimeSpan.FromMinutes(10);

    private readonly TimeSpan _wait = options.Value.Transport == FarmTransport.RabbitMq ? options.Value.AffinityWait : TimeSpan.Zero;

    // Jobs this coordinator sent to a worker's queue and heard no end of yet: the worker, and when (Environment.TickCount64).
    private readonly ConcurrentDictionary<Guid, (string Worker, long SentAt)> _sent = new();

    /// <summary>Whether jobs may go to a worker's own queue at all (RabbitMQ and a wait above zero).</summary>
    public bool Enabled => _wait > TimeSpan.Zero;

    /// <summary>Sends or publishes the job; returns the worker it was sent to, or null when it went to the farm's queue.</summary>
    public async Task<string?> DispatchAsync(BuildLayer job, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Platform is { } platform && platform != FarmPlatforms.Default)
        {
            // Another platform's job goes to that platform's queue, which only workers that run it consume (natively
            // first: their consumers have the higher priority). A queue address: RabbitMQ keeps the job even before a
            // worker for it has ever started.
            var platformQueue = await bus.GetSendEndpoint(new Uri("queue:" + FarmPlatforms.QueueName(platform))).ConfigureAwait(false);
            await platformQueue.Send(job, cancellationToken).ConfigureAwait(false);
            LogSentToPlatform(logger, job.JobId, job.StepId, platform);
            return null;
        }

        if (await PreferredAsync(job, cancellationToken).ConfigureAwait(false) is { AffinityQueue: { } queue } worker)
        {
            try
            {
                var wait = ((long)_wait.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
                var endpoint = await bus.GetSendEndpoint(new Uri("exchange:" + queue)).ConfigureAwait(false);
                await endpoint.Send(job, context =>
                {
                    context.Headers.Set(AffinityJobConsumer.WaitHeader, wait);
                    if (context.TryGetPayload(out RabbitMqSendContext? amqp))
                    {
                        amqp.BasicProperties.Expiration = wait;
                        // Nothing bound to the worker's exchange (its queue expired): returned, and published below.
                        amqp.Mandatory = true;
                    }
                }, cancellationToken).ConfigureAwait(false);
                _sent[job.JobId] = (worker.Name, Environment.TickCount64);
                LogSentToWorker(logger, job.JobId, job.StepId, worker.Name, _wait);
                return worker.Name;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogAffinitySendFailed(logger, e, job.JobId, worker.Name);
            }
        }

        await bus.Publish(job, cancellationToken).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Records that <paramref name="worker"/> ran a job with these <paramref name="inputs"/>, so it holds them extracted
    /// now. A failure only costs affinity later: it is logged, never thrown.
    /// </summary>
    public async Task RecordAsync(string worker, IReadOnlyCollection<LayerRef> inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (!Enabled || inputs.Count == 0 || string.IsNullOrEmpty(worker))
        {
            return;
        }

        try
        {
            await locality.RecordAsync(worker, [.. inputs.Select(i => i.Digest)], cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogLocalityFailed(logger, e, worker);
        }
    }

    /// <summary>The job ended (built, failed or given up): it no longer takes a slot of the worker it was sent to.</summary>
    public void Finished(Guid jobId) => _sent.TryRemove(jobId, out _);

    /// <summary>
    /// Jobs sent to <paramref name="worker"/>'s queue whose end this coordinator has not heard of: while they fill its
    /// slots, another job is not sent there to wait, but to the next holder or the farm's queue at once (a burst of
    /// builds on one base would otherwise queue behind the one worker holding it, each losing the affinity wait).
    /// </summary>
    private int Outstanding(string worker)
    {
        var now = Environment.TickCount64;
        var count = 0;
        foreach (var (id, (name, at)) in _sent)
        {
            if (now - at > SentHorizon.TotalMilliseconds)
            {
                _sent.TryRemove(id, out _);
            }
            else if (name == worker)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>
    /// The layers a job extracts before it runs: its parents and, for COPY --from, the source's layers; and, for each
    /// cache mount of a RUN, the cache as a pseudo-layer <c>farm-cache:KEY</c> weighing <see cref="CacheMountWeight"/>,
    /// so that a worker that ran a step with the cache (and so holds it warm) is preferred as much as one holding that
    /// many bytes of layers (docs/architecture.md, "Cache mounts across the farm").
    /// </summary>
    public static IReadOnlyList<LayerRef> Inputs(IEnumerable<LayerRef> parents, LayerStep? step) =>
        [.. parents.Concat(step?.Copy?.From.Layers ?? [])
            .Concat((step?.Run?.Mounts ?? []).Where(m => m.Type == "cache").Select(m => CacheMountInput(m.Tenant, m.Id ?? m.Target ?? string.Empty)))
            .DistinctBy(l => l.Digest, StringComparer.Ordinal)];

    /// <summary>What a warm cache mount counts for in the choice of a worker: as much as 256 MiB of layers held.</summary>
    public const long CacheMountWeight = 256L << 20;

    /// <summary>The pseudo-layer standing for cache mount <paramref name="id"/> of <paramref name="tenant"/> in the locality record.</summary>
    public static LayerRef CacheMountInput(string? tenant, string id)
    {
        var name = "farm-cache:" + Worker.RunMounts.CacheMounts.Key(tenant, id);
        return new LayerRef(name, name, "application/vnd.farm.cache-mount", CacheMountWeight);
    }

    /// <summary>The worker to prefer for <paramref name="job"/>, or null: none holds any of its inputs, or affinity cannot help.</summary>
    internal async Task<WorkerView?> PreferredAsync(BuildLayer job, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return null;
        }

        var inputs = Inputs(job.Parents, job.Step);
        if (inputs.Count == 0)
        {
            return null;
        }

        var live = workers.All.Where(w => w.AffinityQueue is not null).ToList();
        if (live.Count < 2)
        {
            // One worker (or none yet): the farm's queue reaches it just the same.
            return null;
        }

        try
        {
            var holders = await locality.HoldersAsync([.. inputs.Select(i => i.Digest)], cancellationToken).ConfigureAwait(false);
            return Choose([.. live.Where(w => Outstanding(w.Name) < w.Slots)], inputs, holders);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogLocalityFailed(logger, e, job.StepId);
            return null;
        }
    }

    /// <summary>
    /// The live worker holding the most bytes of <paramref name="inputs"/> (<paramref name="holders"/>: per input, the
    /// workers holding it); ties go to the one with more free slots, then by name. Null when none holds any, and when
    /// it holds no more than every other worker that could take the job: a base every worker has extracted (ten builds
    /// on one base) is no reason to wait for one of them, and the farm's queue gives the job to whichever is free.
    /// </summary>
    internal static WorkerView? Choose(IReadOnlyList<WorkerView> live, IReadOnlyList<LayerRef> inputs, IReadOnlyList<IReadOnlyCollection<string>> holders)
    {
        var held = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < inputs.Count; i++)
        {
            foreach (var worker in holders[i])
            {
                held[worker] = held.GetValueOrDefault(worker) + inputs[i].Size;
            }
        }

        var best = live
            .Where(w => held.GetValueOrDefault(w.Name) > 0)
            .OrderByDescending(w => held[w.Name])
            .ThenByDescending(w => w.FreeSlots)
            .ThenBy(w => w.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        return best is not null && live.Any(w => held.GetValueOrDefault(w.Name) < held[best.Name]) ? best : null;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId} ({StepId}) sent to {Worker}, which holds its inputs; the farm's queue after {Wait}")]
    private static partial void LogSentToWorker(ILogger logger, Guid jobId, string stepId, string worker, TimeSpan wait);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId} ({StepId}) sent to the queue of {Platform}")]
    private static partial void LogSentToPlatform(ILogger logger, Guid jobId, string stepId, string platform);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} could not be sent to {Worker}'s queue; publishing it to the farm's queue")]
    private static partial void LogAffinitySendFailed(ILogger logger, Exception exception, Guid jobId, string worker);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The layer locality record failed ({Subject}): no affinity for it")]
    private static partial void LogLocalityFailed(ILogger logger, Exception exception, string subject);
}
