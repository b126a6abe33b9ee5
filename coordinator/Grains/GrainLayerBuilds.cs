using Farm.Coordinator.Builds;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Grains;

/// <summary>
/// Layer builds through the layer grains, one per cache key. The outcome is waited for in calls of at most
/// <see cref="PollWait"/> each (see <see cref="ILayerGrain.BuildOrJoinAsync"/>): the grain's activation may move while
/// a job runs (its silo stops), and a call that fails in Orleans meanwhile is made again.
/// </summary>
/// <remarks>
/// A wait cancelled while this process stops is not a withdrawal: the build stays with its grain, which resumes it on
/// another silo, and the job it awaited must go on. Only a cancelled build (the process not stopping) leaves its job.
/// </remarks>
public sealed partial class GrainLayerBuilds(
    IGrainFactory grains,
    ILogger<GrainLayerBuilds>? logger = null,
    IHostApplicationLifetime? lifetime = null,
    TimeProvider? time = null) : ILayerBuilds
{
    /// <summary>How long one call waiting for a layer grain's job may take.</summary>
    internal static readonly TimeSpan PollWait = TimeSpan.FromSeconds(10);

    private readonly ILogger _logger = logger ?? NullLogger<GrainLayerBuilds>.Instance;
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public async Task<LayerJobOutcome> BuildOrJoinAsync(string key, LayerJobRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var grain = grains.GetGrain<ILayerGrain>(key);
        var failures = 0;
        try
        {
            while (true)
            {
                try
                {
                    if (await grain.BuildOrJoinAsync(request, PollWait).WaitAsync(cancellationToken).ConfigureAwait(false) is { } outcome)
                    {
                        return outcome;
                    }
                }
                catch (OrleansException e) when (++failures <= 10)
                {
                    LogCallFailed(_logger, e, request.BuildId, request.StepId);
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && lifetime?.ApplicationStopping.IsCancellationRequested != true)
        {
            // This build no longer waits: the grain stops the job unless another build awaits it.
            try
            {
                await grain.LeaveAsync(request.BuildId).WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OrleansException or TimeoutException)
            {
                LogLeaveFailed(_logger, e, request.BuildId, request.StepId);
            }

            throw;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: asking the layer grain for step {StepId} failed; asking again")]
    private static partial void LogCallFailed(ILogger logger, Exception exception, Guid buildId, string stepId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the layer grain of step {StepId} could not be told that the build was cancelled; its job runs to its end")]
    private static partial void LogLeaveFailed(ILogger logger, Exception exception, Guid buildId, string stepId);
}
