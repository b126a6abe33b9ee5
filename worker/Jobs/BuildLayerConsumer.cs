using System.Globalization;
using Farm.Contracts;
using Farm.Worker.Telemetry;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Jobs;

/// <summary>
/// Consumes <see cref="BuildLayer"/> jobs from the workers' queue. The message is acknowledged only when this method
/// returns, after the result is published, so a job whose worker dies is delivered again to another worker.
/// </summary>
/// <remarks>
/// Deliveries are bounded (docs/architecture.md, "Failure model"): every copy of a job carries its delivery number
/// (<see cref="DeliveryHeader"/>, 1 when absent). RabbitMQ only says that a message was delivered before, so a
/// redelivered copy is not run: it is sent again with the next number and acknowledged, and the copy runs. A worker
/// that stops (SIGTERM) lets its jobs finish for <see cref="WorkerOptions.StopGrace"/>, then kills their steps and
/// hands them back the same way. Once a job has ended
/// <see cref="WorkerOptions.MaxDeliveries"/> deliveries without a result, it fails with FARM3006 instead.
/// The same consumer serves the worker's affinity queue (<see cref="AffinityJobConsumer"/>); both take their slots from
/// <see cref="JobSlots"/>.
/// </remarks>
public sealed partial class BuildLayerConsumer(
    ILayerJobExecutor executor,
    RunningJobs running,
    JobSlots slots,
    IOptions<WorkerOptions> options,
    WorkerTelemetry telemetry,
    ILogger<BuildLayerConsumer> logger,
    Platforms.WorkerPlatforms? platforms = null) : IConsumer<BuildLayer>
{
    /// <summary>The delivery number of a job's copy (a header; 1 when absent).</summary>
    public const string DeliveryHeader = "Farm-Delivery";

    /// <summary>The farm's queue, where a job this worker will not run goes back to.</summary>
    private static readonly Uri SharedQueue = new("queue:" + WorkerHosting.QueueName);

    /// <summary>Where a job this worker will not run goes back to: the farm's queue, or its platform's (any worker there runs it).</summary>
    private static Uri SharedQueueOf(BuildLayer job) =>
        job.Platform is null or FarmPlatforms.Default ? SharedQueue : new Uri("queue:" + FarmPlatforms.QueueName(job.Platform));

    public Task Consume(ConsumeContext<BuildLayer> context) => ConsumeAsync(context, affinityWait: null);

    /// <summary>
    /// Runs the job once it has a slot. <paramref name="affinityWait"/>: the job came from this worker's affinity queue
    /// and may wait that long (since it was sent) for a slot here, else it goes to the farm's queue.
    /// </summary>
    internal async Task ConsumeAsync(ConsumeContext<BuildLayer> context, TimeSpan? affinityWait)
    {
        ArgumentNullException.ThrowIfNull(context);
        var job = context.Message;
        var worker = options.Value.Name;
        var delivery = Delivery(context.Headers);
        if (context.ReceiveContext.Redelivered)
        {
            // The delivery this copy was on ended without a result: its worker died, or its channel closed.
            LogRedelivered(logger, job.JobId, delivery);
            await HandBackAsync(context, worker, delivery, affinityWait is not null).ConfigureAwait(false);
            return;
        }

        var wait = affinityWait is { } willing ? Remaining(willing, context.SentTime) : slots.SharedJobWait;
        using var slot = await slots.TakeAsync(wait, affinityWait, context.CancellationToken).ConfigureAwait(false);
        if (slot is null)
        {
            // Every slot is busy: the job goes where a free worker takes it, as the same delivery (it did not run).
            LogPassedOn(logger, job.JobId, wait);
            await SendToSharedQueueAsync(context, delivery).ConfigureAwait(false);
            return;
        }

        LogJobStarted(logger, job.JobId, job.StepId, worker);
        using var busy = telemetry.TrackBusySlot();
        using var activity = WorkerTelemetry.StartJob(job, worker);
        var emulated = platforms?.IsEmulated(job.Platform) == true;
        activity?.SetTag("farm.platform", job.Platform ?? FarmPlatforms.Default);
        activity?.SetTag("farm.emulated", emulated);
        using var registration = running.Start(job.JobId, context.CancellationToken);
        try
        {
            if (platforms is not null && !platforms.Runs(job.Platform))
            {
                // Misrouted (an older coordinator put it on the farm's queue): failing beats running the wrong programs.
                throw new Platforms.PlatformNotRunException(job.Platform ?? FarmPlatforms.Default, worker, platforms.All.Select(p => p.Name));
            }

            var result = await executor.ExecuteAsync(
                job,
                (stream, line) => context.Publish(new StepLogLine(job.BuildId, job.StepId, job.JobId, stream, line, DateTimeOffset.UtcNow)),
                registration.Token).ConfigureAwait(false);
            await context.Publish(new LayerBuilt
            {
                JobId = job.JobId,
                BuildId = job.BuildId,
                StepId = job.StepId,
                CacheKey = job.CacheKey,
                Layer = result.Layer,
                Worker = worker,
                Timings = result.Timings,
                Platform = job.Platform,
                Emulated = emulated,
            }).ConfigureAwait(false);
            telemetry.JobBuilt(activity, result.Layer, result.Timings);
            LogJobFinished(logger, job.JobId, result.Layer?.Digest ?? "no layer");
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested && running.WasCancelled(job.JobId))
        {
            // Every build that awaited it was cancelled: its container is gone, and nothing of it was stored.
            LogJobCancelled(logger, job.JobId);
            await PublishFailureAsync(context, worker, FarmErrorCodes.BuildCancelled, $"{FarmErrorCodes.BuildCancelled}: job {job.JobId} stopped: the builds that awaited it were cancelled", null, retryable: false).ConfigureAwait(false);
        }
        catch (Exception e) when (context.CancellationToken.IsCancellationRequested)
        {
            // This worker stops (SIGTERM): the step is killed and nothing of it was stored. MassTransit returns the
            // message to the queue (a cancelled consume is not a fault), and whoever gets it counts this delivery.
            LogJobHandedBack(logger, e, job.JobId);
            if (affinityWait is null)
            {
                throw;
            }

            // Returned to the affinity queue, the copy would expire there and reach the farm's queue as if never
            // delivered: hand it over counted instead.
            await HandBackAsync(context, worker, delivery, toSharedQueue: true).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var stepFailure = e as IStepFailure;
            var code = (e as FarmException)?.Code ?? FarmErrorCodes.WorkerUnexpected;
            telemetry.JobFailed(activity, code, stepFailure?.ExitCode, e.Message);
            LogJobFailed(logger, job.JobId, e.Message);
            await PublishFailureAsync(context, worker, code, e.Message, stepFailure, IsRetryable(e)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends the job to the queue again as delivery <paramref name="ended"/> + 1 (the original is then acknowledged),
    /// or fails it with FARM3006 when <paramref name="ended"/> deliveries were all that are allowed.
    /// </summary>
    private async Task HandBackAsync(ConsumeContext<BuildLayer> context, string worker, int ended, bool toSharedQueue)
    {
        var job = context.Message;
        var max = options.Value.MaxDeliveries;
        if (ended >= max)
        {
            var message = $"{FarmErrorCodes.DeliveriesExhausted}: job {job.JobId} for step {job.StepId} was delivered {ended} times and each time its worker stopped or died before reporting on it; it is not run again (Farm:Worker:MaxDeliveries is {max}). Check the step for something that kills or stops workers, and the workers' logs.";
            LogDeliveriesExhausted(logger, job.JobId, ended);
            await PublishFailureAsync(context, worker, FarmErrorCodes.DeliveriesExhausted, message, null, retryable: false).ConfigureAwait(false);
            return;
        }

        // Not the consume token: it is already cancelled when this worker stops.
        var queue = await context.GetSendEndpoint(toSharedQueue ? SharedQueueOf(job) : context.ReceiveContext.InputAddress).ConfigureAwait(false);
        await queue.Send(job, s => s.Headers.Set(DeliveryHeader, (ended + 1).ToString(CultureInfo.InvariantCulture)), CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Sends the job to the farm's queue as delivery <paramref name="delivery"/> again (the original is then acknowledged).</summary>
    private static async Task SendToSharedQueueAsync(ConsumeContext<BuildLayer> context, int delivery)
    {
        var queue = await context.GetSendEndpoint(SharedQueueOf(context.Message)).ConfigureAwait(false);
        await queue.Send(context.Message, s => s.Headers.Set(DeliveryHeader, delivery.ToString(CultureInfo.InvariantCulture)), CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>What is left of <paramref name="wait"/> after the time since <paramref name="sent"/> (the sender's clock).</summary>
    internal static TimeSpan Remaining(TimeSpan wait, DateTime? sent)
    {
        var age = sent is { } at ? DateTime.UtcNow - at : TimeSpan.Zero;
        return age <= TimeSpan.Zero ? wait : age >= wait ? TimeSpan.Zero : wait - age;
    }

    /// <summary>The copy's delivery number: the header as text (how this worker writes it) or a number; 1 when absent.</summary>
    internal static int Delivery(Headers headers) =>
        PositiveHeader(headers, DeliveryHeader) is { } delivery && delivery <= int.MaxValue ? (int)delivery : 1;

    /// <summary>A header holding a positive whole number, as text (how Farm writes them) or a number; null otherwise.</summary>
    internal static long? PositiveHeader(Headers headers, string name) =>
        headers.TryGetHeader(name, out var value) && long.TryParse(Convert.ToString(value is byte[] bytes ? System.Text.Encoding.UTF8.GetString(bytes) : value, CultureInfo.InvariantCulture), CultureInfo.InvariantCulture, out var number) && number > 0
            ? number
            : null;

    private static Task PublishFailureAsync(ConsumeContext<BuildLayer> context, string worker, string code, string message, IStepFailure? stepFailure, bool retryable)
    {
        var job = context.Message;
        return context.Publish(new LayerBuildFailed
        {
            JobId = job.JobId,
            BuildId = job.BuildId,
            StepId = job.StepId,
            CacheKey = job.CacheKey,
            Worker = worker,
            Code = code,
            Message = message,
            ExitCode = stepFailure?.ExitCode,
            OutputTail = stepFailure?.OutputTail ?? [],
            Retryable = retryable,
        });
    }

    /// <summary>
    /// Faults of the farm (a store, the sandbox machinery, an unexpected exception) are worth another worker's try;
    /// faults of the step (a failing RUN, a bad COPY source, an unknown USER) fail the same way everywhere.
    /// </summary>
    internal static bool IsRetryable(Exception e) => e switch
    {
        IStepFailure => false,
        Platforms.PlatformNotRunException => false,
        FarmException f => f.Code.StartsWith("FARM22", StringComparison.Ordinal) || f.Code is FarmErrorCodes.Sandbox or FarmErrorCodes.Snapshot or FarmErrorCodes.CacheMountCoordination,
        _ => true,
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} came back after delivery {Delivery} ended without a result")]
    private static partial void LogRedelivered(ILogger logger, Guid jobId, int delivery);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} passed on to the farm's queue: no slot came free within {Wait}")]
    private static partial void LogPassedOn(ILogger logger, Guid jobId, TimeSpan wait);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} handed back: this worker stops")]
    private static partial void LogJobHandedBack(ILogger logger, Exception exception, Guid jobId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId} failed: {Deliveries} deliveries ended without a result")]
    private static partial void LogDeliveriesExhausted(ILogger logger, Guid jobId, int deliveries);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} cancelled: the builds that awaited it were cancelled")]
    private static partial void LogJobCancelled(ILogger logger, Guid jobId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ({StepId}) started on {Worker}")]
    private static partial void LogJobStarted(ILogger logger, Guid jobId, string stepId, string worker);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} finished: {Layer}")]
    private static partial void LogJobFinished(ILogger logger, Guid jobId, string layer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed: {Error}")]
    private static partial void LogJobFailed(ILogger logger, Guid jobId, string error);
}
