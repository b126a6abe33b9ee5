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
public sealed partial class BuildLayerConsumer(
    ILayerJobExecutor executor,
    RunningJobs running,
    IOptions<WorkerOptions> options,
    WorkerTelemetry telemetry,
    ILogger<BuildLayerConsumer> logger) : IConsumer<BuildLayer>
{
    public async Task Consume(ConsumeContext<BuildLayer> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var job = context.Message;
        var worker = options.Value.Name;
        LogJobStarted(logger, job.JobId, job.StepId, worker);
        using var busy = telemetry.TrackBusySlot();
        using var activity = WorkerTelemetry.StartJob(job, worker);
        using var registration = running.Start(job.JobId, context.CancellationToken);
        try
        {
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
        catch (Exception e) when (!context.CancellationToken.IsCancellationRequested)
        {
            var stepFailure = e as IStepFailure;
            var code = (e as FarmException)?.Code ?? FarmErrorCodes.WorkerUnexpected;
            telemetry.JobFailed(activity, code, stepFailure?.ExitCode, e.Message);
            LogJobFailed(logger, job.JobId, e.Message);
            await PublishFailureAsync(context, worker, code, e.Message, stepFailure, IsRetryable(e)).ConfigureAwait(false);
        }
    }

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
        FarmException f => f.Code.StartsWith("FARM22", StringComparison.Ordinal) || f.Code is FarmErrorCodes.Sandbox or FarmErrorCodes.Snapshot,
        _ => true,
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} cancelled: the builds that awaited it were cancelled")]
    private static partial void LogJobCancelled(ILogger logger, Guid jobId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ({StepId}) started on {Worker}")]
    private static partial void LogJobStarted(ILogger logger, Guid jobId, string stepId, string worker);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} finished: {Layer}")]
    private static partial void LogJobFinished(ILogger logger, Guid jobId, string layer);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed: {Error}")]
    private static partial void LogJobFailed(ILogger logger, Guid jobId, string error);
}
