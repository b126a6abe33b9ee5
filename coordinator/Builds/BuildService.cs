using System.Collections.Concurrent;
using Farm.Contracts;
using Farm.Coordinator.Cache;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Telemetry;
using Farm.Oci.Stores;
using MassTransit;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Runs submitted builds in the coordinator: <see cref="Submit"/> records a build as queued and returns at once, the
/// <see cref="BuildOrchestrator"/> runs it in the background, its events go to the <see cref="BuildRegistry"/>, and a
/// <see cref="BuildCompleted"/> is published when it ends. The action cache is Redis when
/// <see cref="CoordinatorOptions.Redis"/> is set, else files under <see cref="BuildServiceOptions.StateDirectory"/>;
/// either is wrapped in a <see cref="VerifyingActionCache"/> over the cache store.
/// </summary>
public sealed partial class BuildService : IAsyncDisposable
{
    private readonly IGrainFactory _grains;
    private readonly BuildLogHub _logs;
    private readonly BlobStoreLocator _stores;
    private readonly IBus _bus;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly BuildServiceOptions _options;
    private readonly CoordinatorOptions _coordinator;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Guid, Task> _running = new();
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private BuildOrchestrator? _orchestrator;
    private ConnectionMultiplexer? _redis;

    public BuildService(
        IGrainFactory grains,
        BuildLogHub logs,
        BlobStoreLocator stores,
        BuildRegistry registry,
        IBus bus,
        IOptions<BuildServiceOptions> options,
        IOptions<CoordinatorOptions> coordinator,
        ILoggerFactory loggers,
        TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(coordinator);
        ArgumentNullException.ThrowIfNull(loggers);
        _grains = grains;
        _logs = logs;
        _stores = stores;
        Registry = registry;
        _bus = bus;
        _options = options.Value;
        _coordinator = coordinator.Value;
        _loggers = loggers;
        _logger = loggers.CreateLogger<BuildService>();
        _time = time ?? TimeProvider.System;
    }

    public BuildRegistry Registry { get; }

    /// <summary>The cache store builds read their context from and write their layers to.</summary>
    public string CacheStore => _options.CacheStore;

    /// <summary>
    /// Records the build as queued (under its <see cref="SubmitBuild.BuildId"/>, or a new id when empty) and starts it
    /// in the background. Submitting a known id again returns that build: a redelivered message starts nothing twice.
    /// </summary>
    /// <exception cref="InvalidSubmissionException">The Dockerfile or the context digest is missing (FARM4211).</exception>
    public BuildRecord Submit(SubmitBuild submit)
    {
        ArgumentNullException.ThrowIfNull(submit);
        if (string.IsNullOrWhiteSpace(submit.Dockerfile))
        {
            throw new InvalidSubmissionException("The submission has no Dockerfile text: set \"dockerfile\" to the Dockerfile's content.");
        }

        if (string.IsNullOrWhiteSpace(submit.ContextDigest))
        {
            throw new InvalidSubmissionException($"The submission has no context: upload the context tar and its index to {CacheStore} and set \"contextDigest\" and \"contextIndexDigest\".");
        }

        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        var id = submit.BuildId == Guid.Empty ? Guid.NewGuid() : submit.BuildId;
        var (record, added) = Registry.Add(submit with { BuildId = id }, _time.GetUtcNow());
        if (added)
        {
            LogQueued(_logger, id, submit.Tags.Count == 0 ? "(no tags)" : string.Join(", ", submit.Tags));
            var run = Task.Run(() => RunAsync(record, _stopping.Token));
            _running[id] = run;
            _ = run.ContinueWith(_ => _running.TryRemove(id, out Task? _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return record;
    }

    private async Task RunAsync(BuildRecord record, CancellationToken cancellationToken)
    {
        record.MarkRunning();
        using var span = CoordinatorTelemetry.StartBuild(record.Submission);
        var progress = new RecordProgress(record);
        BuildCompleted completed;
        try
        {
            var orchestrator = await OrchestratorAsync(cancellationToken).ConfigureAwait(false);
            var request = await orchestrator.LoadRequestAsync(record.Submission, CacheStore, cancellationToken).ConfigureAwait(false);
            var result = await orchestrator.RunAsync(request, progress, cancellationToken).ConfigureAwait(false);
            completed = new BuildCompleted { BuildId = record.BuildId, Succeeded = true, ImageDigest = result.ImageDigest, Pushed = result.Pushed };
        }
        catch (Exception e)
        {
            var error = e is OperationCanceledException && cancellationToken.IsCancellationRequested ? new BuildAbandonedException() : e;
            var code = error is FarmException farm ? farm.Code : "FARM4200";
            // The orchestrator reports its own failures; one before it ran (the context index, the cache) is reported here.
            record.Add(new BuildFailed(record.BuildId, _time.GetUtcNow(), code, error.Message));
            if (record.End is BuildFailed failed)
            {
                code = failed.Code;
                error = new InvalidOperationException(failed.Message);
            }

            LogFailed(_logger, e, record.BuildId, code);
            completed = new BuildCompleted { BuildId = record.BuildId, Succeeded = false, ErrorCode = code, Error = error.Message };
        }

        CoordinatorTelemetry.BuildEnded(span, completed, _time.GetUtcNow() - record.SubmittedAt);
        try
        {
            using var publishTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _bus.Publish(completed, publishTimeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The registry holds the outcome either way; a lost event only costs subscribers of the bus.
            LogPublishFailed(_logger, e, record.BuildId);
        }
    }

    private async Task<BuildOrchestrator> OrchestratorAsync(CancellationToken cancellationToken)
    {
        if (_orchestrator is { } ready)
        {
            return ready;
        }

        await _initLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_orchestrator is null)
            {
                IActionCache inner;
                if (string.IsNullOrWhiteSpace(_coordinator.Redis))
                {
                    inner = new FileActionCache(Path.Combine(_options.StateDirectory, "action-cache"));
                }
                else
                {
                    _redis = await ConnectionMultiplexer.ConnectAsync(_coordinator.Redis).ConfigureAwait(false);
                    inner = new RedisActionCache(_redis);
                }

                var store = await _stores.OpenAsync(CacheStore, cancellationToken).ConfigureAwait(false);
                var cache = new VerifyingActionCache(inner, store, _loggers.CreateLogger<VerifyingActionCache>());
                _orchestrator = new BuildOrchestrator(_grains, cache, _stores, _logs, logger: _loggers.CreateLogger<BuildOrchestrator>());
            }

            return _orchestrator;
        }
        finally
        {
            _initLock.Release();
        }
    }

    /// <summary>Cancels running builds (they end as failed, FARM4212) and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_running.Values).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            LogStopTimedOut(_logger, e, _running.Count);
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }

        _initLock.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId} queued for {Tags}")]
    private static partial void LogQueued(ILogger logger, Guid buildId, string tags);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId} failed with {Code}")]
    private static partial void LogFailed(ILogger logger, Exception exception, Guid buildId, string code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The completion of build {BuildId} could not be published")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} builds did not stop within 30 s")]
    private static partial void LogStopTimedOut(ILogger logger, Exception exception, int count);

    /// <summary>Records each event synchronously, in the order the orchestrator reports them.</summary>
    private sealed class RecordProgress(BuildRecord record) : IProgress<BuildEvent>
    {
        public void Report(BuildEvent value) => record.Add(value);
    }
}
