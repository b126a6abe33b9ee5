using Farm.Contracts;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Hosting;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Farm.Coordinator.Grains;

/// <summary>
/// The single flight for one cache key. The first <see cref="BuildAsync"/> publishes a <see cref="BuildLayer"/> job;
/// callers arriving while it runs await the same outcome; a built layer is kept (in memory and in grain storage) and
/// returned at once afterwards.
/// </summary>
/// <remarks>
/// Reentrant: callers wait for the job inside <see cref="BuildAsync"/>, and the results consumer's
/// <see cref="OnJobBuiltAsync"/> must run meanwhile. Orleans still runs one turn at a time on the grain's scheduler,
/// so the fields need no locks; the code re-checks them after every await because another call may have run there.
/// Grain code must not use ConfigureAwait(false): continuations have to come back to the grain's scheduler.
/// Failures are not remembered: a RUN that failed on a network blip must run again on the next build without the
/// user changing the Dockerfile (Docker does not cache failures either); only the callers of the failed flight get it.
/// </remarks>
[Reentrant]
public sealed partial class LayerGrain : Grain, ILayerGrain
{
    private readonly IPersistentState<LayerGrainStateV1> _state;
    private readonly IBus _bus;
    private readonly JobDispatcher _dispatcher;
    private readonly CoordinatorOptions _options;
    private readonly ILogger<LayerGrain> _logger;

    // The flight in progress, null when idle.
    private TaskCompletionSource<LayerJobOutcome>? _flight;
    private readonly HashSet<Guid> _waiting = [];
    private LayerJobRequest? _request;
    private Guid _jobId;
    private int _attempt;
    private IGrainTimer? _deadline;

    public LayerGrain(
        [PersistentState("layer", CoordinatorHosting.LayerStorage)] IPersistentState<LayerGrainStateV1> state,
        IBus bus,
        JobDispatcher dispatcher,
        IOptions<CoordinatorOptions> options,
        ILogger<LayerGrain> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _state = state;
        _bus = bus;
        _dispatcher = dispatcher;
        _options = options.Value;
        _logger = logger;
    }

    private string CacheKey => this.GetPrimaryKeyString();

    public async Task<LayerJobOutcome> BuildAsync(LayerJobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_state.State?.Outcome is { } remembered)
        {
            return remembered;
        }

        return await (await StartOrJoinAsync(request));
    }

    public async Task<LayerJobOutcome?> BuildOrJoinAsync(LayerJobRequest request, TimeSpan wait)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_state.State?.Outcome is { } remembered)
        {
            return remembered;
        }

        var flight = await StartOrJoinAsync(request);
        return await Task.WhenAny(flight, Task.Delay(wait)) == flight ? await flight : null;
    }

    /// <summary>The flight's outcome: the running one's, or a new one's (its job published).</summary>
    private async Task<Task<LayerJobOutcome>> StartOrJoinAsync(LayerJobRequest request)
    {
        _waiting.Add(request.BuildId);
        if (_flight is null)
        {
            if (request.Step is null)
            {
                throw new ArgumentException("The request has no step to run.", nameof(request));
            }

            _flight = new TaskCompletionSource<LayerJobOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
            _request = request;
            _attempt = 0;
            var flight = _flight;
            await DispatchAsync();
            return flight.Task;
        }

        LogJoined(_logger, CacheKey, request.BuildId, _jobId);
        return _flight.Task;
    }

    public async Task LeaveAsync(Guid buildId)
    {
        if (!_waiting.Remove(buildId) || _waiting.Count > 0 || _flight is null)
        {
            return;
        }

        var jobId = _jobId;
        LogCancelled(_logger, CacheKey, jobId);
        await _bus.Publish(new CancelLayerJob { JobId = jobId, CacheKey = CacheKey });
        await FinishAsync(new LayerJobOutcome
        {
            CacheKey = CacheKey,
            JobId = jobId,
            Attempts = _attempt,
            Failure = new JobFailure { Code = FarmErrorCodes.BuildCancelled, Message = $"{FarmErrorCodes.BuildCancelled}: every build that awaited job {jobId} was cancelled" },
        });
    }

    public async Task ForgetAsync()
    {
        if (_flight is null && _state.State?.Outcome is not null)
        {
            await _state.ClearStateAsync();
        }
    }

    public Task<LayerJobOutcome?> GetOutcomeAsync() => Task.FromResult(_state.State?.Outcome);

    public async Task OnJobBuiltAsync(Guid jobId, JobSuccess success)
    {
        ArgumentNullException.ThrowIfNull(success);
        if (_state.State?.Outcome is not null)
        {
            // A redelivered job finished twice, or an earlier attempt outlived its retry: layers of one key are
            // interchangeable, the first one stays.
            LogDuplicate(_logger, CacheKey, jobId);
            return;
        }

        // Its worker holds the job's inputs extracted now, and the blob of the layer it built: recorded before the
        // flight ends, so that the next step of the chain, dispatched as soon as it does, already prefers that worker.
        if (jobId == _jobId && _request is { } request)
        {
            IReadOnlyList<LayerRef> held = [.. JobDispatcher.Inputs(request.Parents, request.Step), .. success.Layer is { } built ? [built.ToLayerRef()] : Array.Empty<LayerRef>()];
            await _dispatcher.RecordAsync(success.Worker, held, CancellationToken.None);
        }

        // Accepted even when no flight waits (a job that outlived a grain deactivation, or an earlier attempt that a
        // worker finished after all): a layer whose blob is stored is as good as the one being awaited.
        await FinishAsync(new LayerJobOutcome { CacheKey = CacheKey, JobId = jobId, Attempts = Math.Max(_attempt, 1), Success = success });
    }

    public async Task OnJobFailedAsync(Guid jobId, JobFailure failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (_flight is null || jobId != _jobId)
        {
            // An attempt already superseded, or a flight already over: the current attempt decides.
            LogStale(_logger, CacheKey, jobId, failure.Code);
            return;
        }

        _dispatcher.Finished(jobId);
        if (failure.Retryable && _attempt < _options.MaxAttempts)
        {
            LogRetrying(_logger, CacheKey, jobId, _attempt, _options.MaxAttempts, failure.Message);
            await DispatchAsync();
            return;
        }

        var reported = failure.Retryable
            ? failure with
            {
                Code = CoordinatorErrorCodes.AttemptsExhausted,
                Message = $"{CoordinatorErrorCodes.AttemptsExhausted}: gave up on step {_request?.StepId} after {_attempt} attempts; the last one failed on {failure.Worker}: {failure.Message}",
            }
            : failure;
        await FinishAsync(new LayerJobOutcome { CacheKey = CacheKey, JobId = jobId, Attempts = _attempt, Failure = reported });
    }

    private async Task DispatchAsync()
    {
        var request = _request!;
        _attempt++;
        _jobId = Guid.NewGuid();
        var job = new BuildLayer
        {
            JobId = _jobId,
            BuildId = request.BuildId,
            StepId = request.StepId,
            CacheKey = CacheKey,
            Attempt = _attempt,
            BlobStore = request.BlobStore,
            Parents = request.Parents,
            Step = request.Step!,
            Compression = request.Compression,
            SourceDateEpoch = request.SourceDateEpoch,
            Secrets = request.Secrets,
            EnqueuedAt = DateTimeOffset.UtcNow,
            Platform = request.Platform,
        };

        _deadline?.Dispose();
        // KeepAlive: the flight must outlive idle collection even when its callers gave up waiting.
        _deadline = this.RegisterGrainTimer(OnDeadlineAsync, _jobId, new GrainTimerCreationOptions
        {
            DueTime = _options.JobTimeout,
            Period = Timeout.InfiniteTimeSpan,
            KeepAlive = true,
        });

        try
        {
            var worker = await _dispatcher.DispatchAsync(job, CancellationToken.None);
            LogDispatching(_logger, CacheKey, _jobId, _attempt, request.StepId, worker ?? "the farm's queue");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogDispatchFailed(_logger, e, CacheKey, job.JobId);
            await FinishAsync(new LayerJobOutcome
            {
                CacheKey = CacheKey,
                JobId = job.JobId,
                Attempts = _attempt,
                Failure = new JobFailure
                {
                    Code = CoordinatorErrorCodes.DispatchFailed,
                    Message = $"{CoordinatorErrorCodes.DispatchFailed}: could not publish the job for step {request.StepId} to the workers' queue: {e.Message}. Is RabbitMQ up (infra/up.sh)?",
                    Retryable = true,
                },
            });
        }
    }

    private async Task OnDeadlineAsync(Guid jobId, CancellationToken cancellationToken)
    {
        if (_flight is null || jobId != _jobId)
        {
            return;
        }

        LogTimedOut(_logger, CacheKey, jobId, _options.JobTimeout);
        await FinishAsync(new LayerJobOutcome
        {
            CacheKey = CacheKey,
            JobId = jobId,
            Attempts = _attempt,
            Failure = new JobFailure
            {
                Code = CoordinatorErrorCodes.JobTimedOut,
                Message = $"{CoordinatorErrorCodes.JobTimedOut}: no worker reported on step {_request?.StepId} (job {jobId}, attempt {_attempt}) within {_options.JobTimeout}; check that workers consume the farm-build-layer queue.",
                Retryable = true,
            },
        });
    }

    private async Task FinishAsync(LayerJobOutcome outcome)
    {
        _dispatcher.Finished(outcome.JobId);
        var flight = _flight;
        _flight = null;
        _request = null;
        _waiting.Clear();
        _deadline?.Dispose();
        _deadline = null;

        if (outcome.Succeeded)
        {
            _state.State = new LayerGrainStateV1 { Outcome = outcome };
            LogBuilt(_logger, CacheKey, outcome.JobId, outcome.Success!.Layer?.Digest ?? "no layer", outcome.Success.Worker);
        }
        else
        {
            LogFailed(_logger, CacheKey, outcome.JobId, outcome.Failure!.Message);
        }

        // Callers do not wait for storage: their continuations run once this turn yields.
        flight?.TrySetResult(outcome);
        if (outcome.Succeeded)
        {
            try
            {
                await _state.WriteStateAsync();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The layer stays remembered in memory; losing it from storage only costs a rebuild (or an action
                // cache hit) after the grain moves.
                LogStateWriteFailed(_logger, e, CacheKey);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Layer {CacheKey}: job {JobId} cancelled, no build awaits it any more")]
    private static partial void LogCancelled(ILogger logger, string cacheKey, Guid jobId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Layer {CacheKey}: job {JobId} attempt {Attempt} for {StepId} sent to {Target}")]
    private static partial void LogDispatching(ILogger logger, string cacheKey, Guid jobId, int attempt, string stepId, string target);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Layer {CacheKey}: build {BuildId} joins job {JobId}")]
    private static partial void LogJoined(ILogger logger, string cacheKey, Guid buildId, Guid jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Layer {CacheKey}: job {JobId} failed on attempt {Attempt} of {MaxAttempts}, retrying: {Error}")]
    private static partial void LogRetrying(ILogger logger, string cacheKey, Guid jobId, int attempt, int maxAttempts, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Layer {CacheKey}: job {JobId} built {Layer} on {Worker}")]
    private static partial void LogBuilt(ILogger logger, string cacheKey, Guid jobId, string layer, string worker);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Layer {CacheKey}: job {JobId} failed: {Error}")]
    private static partial void LogFailed(ILogger logger, string cacheKey, Guid jobId, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Layer {CacheKey}: ignoring a second result from job {JobId}")]
    private static partial void LogDuplicate(ILogger logger, string cacheKey, Guid jobId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Layer {CacheKey}: ignoring failure {Code} of superseded job {JobId}")]
    private static partial void LogStale(ILogger logger, string cacheKey, Guid jobId, string code);

    [LoggerMessage(Level = LogLevel.Error, Message = "Layer {CacheKey}: job {JobId} could not be published")]
    private static partial void LogDispatchFailed(ILogger logger, Exception exception, string cacheKey, Guid jobId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Layer {CacheKey}: job {JobId} got no result within {Timeout}")]
    private static partial void LogTimedOut(ILogger logger, string cacheKey, Guid jobId, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Layer {CacheKey}: the built layer could not be written to grain storage")]
    private static partial void LogStateWriteFailed(ILogger logger, Exception exception, string cacheKey);
}
