using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Farm.Dockerfile.Planning;
using Farm.Oci.Images;
using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Cache;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Grains;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Telemetry;
using Farm.Dockerfile.Context;
using Farm.Oci.Stores;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Runs submitted builds in the coordinator: <see cref="Submit(SubmitBuild)"/> records a build as queued and returns at once; its
/// <see cref="IBuildGrain"/> persists it and starts it on this silo, the <see cref="BuildOrchestrator"/> runs it in
/// the background, its events are numbered and go to the <see cref="BuildRegistry"/>, to the grain (persisted) and,
/// in a cluster, to the <see cref="BuildEventStream"/> that every coordinator follows builds from
/// (<see cref="EventsAsync"/>); the grain publishes a <see cref="BuildCompleted"/> when it ends. When this silo stops, the
/// grain resumes the build on another one. The action cache is Redis when
/// <see cref="CoordinatorOptions.Redis"/> is set, else files under <see cref="BuildServiceOptions.StateDirectory"/>;
/// either is wrapped in a <see cref="VerifyingActionCache"/> over the cache store.
/// </summary>
public sealed partial class BuildService : IAsyncDisposable, ILifecycleParticipant<ISiloLifecycle>
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
    private readonly LocalImages? _localImages;
    private readonly ILayerBuilds _layers;
    private readonly BuildEventStream? _stream;
    private readonly RegistryCredentials _credentials;
    private readonly Workers.WorkerRegistry? _workers;
    private readonly JobSecretsEndpoint? _jobSecrets;
    private readonly RabbitMqOptions? _rabbitMq;
    private UrlContexts.UrlContextFetcher? _urlContexts;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, string> _contextUrls = new();

    /// <summary>The secrets and SSH agents passed with the builds this coordinator runs, for its workers to fetch.</summary>
    public BuildSecrets Secrets { get; }
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<Guid, Task> _running = [];
    private readonly Dictionary<Guid, CancellationTokenSource> _cancels = [];
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private BuildOrchestrator? _orchestrator;
    private BuildCacheJanitor? _janitor;
    private int _capRunning;
    private ConnectionMultiplexer? _redis;
    private int _disposed;

    public BuildService(
        IGrainFactory grains,
        BuildLogHub logs,
        BlobStoreLocator stores,
        BuildRegistry registry,
        IBus bus,
        IOptions<BuildServiceOptions> options,
        IOptions<CoordinatorOptions> coordinator,
        ILoggerFactory loggers,
        ILayerBuilds layers,
        LocalImages? localImages = null,
        TimeProvider? time = null,
        BuildEventStream? stream = null,
        RegistryCredentials? credentials = null,
        IHostApplicationLifetime? lifetime = null,
        BuildSecrets? secrets = null,
        Workers.WorkerRegistry? workers = null,
        JobSecretsEndpoint? jobSecrets = null,
        IOptions<RabbitMqOptions>? rabbitMq = null)
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
        _localImages = localImages;
        _layers = layers;
        _stream = stream is { Enabled: true } ? stream : null;
        _credentials = credentials ?? RegistryCredentials.None;
        Secrets = secrets ?? new BuildSecrets(_time);
        _workers = workers;
        _jobSecrets = jobSecrets;
        _rabbitMq = rabbitMq?.Value;
        // The host stops its services in reverse order of registration, the bus before the silo: runs must learn that
        // this process stops before anything they use does, or a publish cut short would end a build as failed (in
        // its grain, for good) instead of leaving it to be resumed on a silo still up.
        lifetime?.ApplicationStopping.Register(() => _ = _stopping.CancelAsync());
    }

    public BuildRegistry Registry { get; }

    /// <summary>How many builds run on this silo now.</summary>
    public int RunningCount
    {
        get
        {
            lock (_running)
            {
                return _running.Count;
            }
        }
    }

    /// <summary>The cache store builds read their context from and write their layers to.</summary>
    public string CacheStore => _options.CacheStore;

    /// <summary>Where clients upload contexts (<see cref="BuildServiceOptions.ClientCacheStore"/>, else <see cref="CacheStore"/>).</summary>
    public string ClientCacheStore => string.IsNullOrEmpty(_options.ClientCacheStore) ? CacheStore : _options.ClientCacheStore;

    /// <summary>
    /// Records the build as queued (under its <see cref="SubmitBuild.BuildId"/>, or a new id when empty) and starts it
    /// in the background. Submitting a known id again returns that build: a redelivered message starts nothing twice.
    /// </summary>
    /// <exception cref="InvalidSubmissionException">The submission is not one a build can run from (FARM4211, <see cref="SubmissionValidation"/>).</exception>
    public BuildRecord Submit(SubmitBuild submit) => Submit(submit, passed: null);

    /// <summary>
    /// Like <see cref="Submit(SubmitBuild)"/>, with registry credentials the client passed for this build only
    /// (<paramref name="passed"/>, by registry): held in this process's memory while the build runs here, and named
    /// (not stored) in <see cref="SubmitBuild.PushCredentialRegistries"/>. A known id keeps what it was submitted with.
    /// </summary>
    /// <exception cref="InvalidSubmissionException">The submission is not one a build can run from (FARM4211, <see cref="SubmissionValidation"/>).</exception>
    public BuildRecord Submit(SubmitBuild submit, IReadOnlyDictionary<string, Oci.Registry.RegistryCredential>? passed) => Submit(submit, passed, null);

    /// <summary>
    /// Like <see cref="Submit(SubmitBuild, IReadOnlyDictionary{string, Oci.Registry.RegistryCredential}?)"/>, with the
    /// build's secrets and SSH agents (<paramref name="secrets"/>): held in this process's memory while the build runs
    /// here, and named by id (not stored) in <see cref="SubmitBuild.SecretIds"/> and <see cref="SubmitBuild.SshIds"/>.
    /// </summary>
    /// <exception cref="InvalidSubmissionException">The submission is not one a build can run from (FARM4211, <see cref="SubmissionValidation"/>).</exception>
    public BuildRecord Submit(SubmitBuild submit, IReadOnlyDictionary<string, Oci.Registry.RegistryCredential>? passed, BuildSecretValues? secrets)
    {
        ArgumentNullException.ThrowIfNull(submit);
        submit = submit with
        {
            SecretIds = secrets is null ? [] : [.. secrets.Secrets.Keys.Order(StringComparer.Ordinal)],
            SshIds = secrets is null ? [] : [.. secrets.SshAgents.Keys.Order(StringComparer.Ordinal)],
        };
        if (passed is { Count: > 0 })
        {
            submit = submit with { PushCredentialRegistries = [.. passed.Keys.Order(StringComparer.OrdinalIgnoreCase)] };
        }

        SubmissionValidation.Validate(submit, ClientCacheStore);
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        // A URL context's user information (https://USER:TOKEN@HOST/...) stays in this process's memory for the run,
        // as passed registry credentials do: never in the record, the grain, Redis or an event.
        string? credentialedUrl = null;
        if (submit.ContextUrl is { } contextUrl && GitSource.Redact(contextUrl.Url) is var redacted && redacted != contextUrl.Url)
        {
            credentialedUrl = contextUrl.Url;
            submit = submit with { ContextUrl = contextUrl with { Url = redacted } };
        }

        var id = submit.BuildId == Guid.Empty ? Guid.NewGuid() : submit.BuildId;
        var (record, added) = Registry.Add(submit with { BuildId = id }, _time.GetUtcNow());
        if (!added && !string.Equals(record.Submission.Tenant, submit.Tenant, StringComparison.Ordinal))
        {
            // Another tenant's id: say nothing of that build, start nothing.
            throw new InvalidSubmissionException($"The build id {id} cannot be used: leave \"buildId\" empty or choose a new random one.");
        }

        if (added)
        {
            if (passed is { Count: > 0 })
            {
                // Before the grain may start it: the run looks them up first thing.
                _credentials.Hold(id, passed);
            }

            if (secrets is not null && (secrets.Secrets.Count > 0 || secrets.SshAgents.Count > 0))
            {
                Secrets.Hold(id, secrets);
            }

            if (credentialedUrl is not null)
            {
                _contextUrls[id] = credentialedUrl;
            }

            LogQueued(_logger, id, submit.Tags.Count == 0 ? "(no tags)" : string.Join(", ", submit.Tags), submit.Tenant ?? "none");
            _ = SubmitToGrainAsync(record);
        }

        return record;
    }

    /// <summary>
    /// A dry run of <paramref name="submit"/> (<c>POST /builds/plan</c>): which steps would run and why, from the cache
    /// keys and the action cache, without a build record, a job, a push or an image (base images are resolved, and the
    /// local farm pulls one it lacks, as a build would).
    /// </summary>
    /// <exception cref="InvalidSubmissionException">The submission is not one a build can run from (FARM4211).</exception>
    public async Task<BuildPlanReport> DryRunAsync(SubmitBuild submit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(submit);
        SubmissionValidation.Validate(submit, ClientCacheStore);
        var id = submit.BuildId == Guid.Empty ? Guid.NewGuid() : submit.BuildId;
        var orchestrator = await OrchestratorAsync(cancellationToken).ConfigureAwait(false);
        var request = await LoadRequestAsync(orchestrator, submit with { BuildId = id, Output = null }, new Progress<BuildEvent>(), cancellationToken).ConfigureAwait(false);
        return await orchestrator.DryRunAsync(request with { RegistryAccess = _credentials.For(submit) }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The build's record: this silo's live one when the build ran here, else one rebuilt from the build grain's
    /// persisted state (its status and the tail of its events).
    /// </summary>
    /// <exception cref="BuildNotFoundException">No build has this id (FARM4210).</exception>
    /// <exception cref="ClusterUnavailableException">The build's grain cannot be reached now (FARM4216).</exception>
    public async Task<BuildRecord> GetAsync(Guid buildId, CancellationToken cancellationToken)
    {
        if (Registry.TryGet(buildId, out var record))
        {
            return record;
        }

        BuildGrainStateV1? state;
        try
        {
            state = await _grains.GetGrain<IBuildGrain>(buildId).GetAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or RedisException)
        {
            // The grain's silo is gone and not yet declared dead, or its storage does not answer: a passing state.
            throw new ClusterUnavailableException(buildId, e);
        }

        return BuildRecord.FromState(buildId, state ?? throw new BuildNotFoundException(buildId));
    }

    /// <summary>The build's record if <paramref name="caller"/> may see it: another tenant's build is unknown to it.</summary>
    /// <exception cref="BuildNotFoundException">No build has this id, or it is another tenant's (FARM4210).</exception>
    public async Task<BuildRecord> GetAsync(Guid buildId, FarmCaller caller, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        var record = await GetAsync(buildId, cancellationToken).ConfigureAwait(false);
        return caller.Sees(record.Submission) ? record : throw new BuildNotFoundException(buildId);
    }

    /// <summary>
    /// The build's events numbered above <paramref name="after"/>; with <paramref name="follow"/>, then each new one
    /// as it happens, until the build's end event. In a cluster they come from the <see cref="BuildEventStream"/>, so
    /// any coordinator follows any build, wherever it runs and however often it resumed; otherwise from this silo's
    /// record. Ends without an end event only when <paramref name="cancellationToken"/> fires.
    /// </summary>
    /// <exception cref="BuildNotFoundException">No build has this id (FARM4210), thrown by this call, before any event.</exception>
    public async Task<IAsyncEnumerable<SequencedBuildEvent>> EventsAsync(Guid buildId, long after, bool follow, CancellationToken cancellationToken)
    {
        if (_stream is null)
        {
            var record = await GetAsync(buildId, cancellationToken).ConfigureAwait(false);
            return follow ? record.FollowAsync(after, cancellationToken) : record.EventsAfter(after).ToAsyncEnumerable();
        }

        // Known here, or events stored: no grain call, whose silo may have died a moment ago and not yet be declared
        // dead (a call would wait for that). Else the grain says whether the build exists: a queued one has no events.
        if (!Registry.TryGet(buildId, out _) && await _stream.LastSeqAsync(buildId, cancellationToken).ConfigureAwait(false) == 0)
        {
            _ = await GetAsync(buildId, cancellationToken).ConfigureAwait(false);
        }

        return StreamEventsAsync(_stream, buildId, after, follow, cancellationToken);
    }

    private async IAsyncEnumerable<SequencedBuildEvent> StreamEventsAsync(BuildEventStream stream, Guid buildId, long after, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var wakeup = follow ? await stream.SubscribeAsync(buildId, cancellationToken).ConfigureAwait(false) : null;
        try
        {
            var read = false;
            var quietSince = _time.GetUtcNow();
            while (true)
            {
                var batch = await stream.ReadAsync(buildId, after, 500, cancellationToken).ConfigureAwait(false);
                read |= batch.Count > 0;
                foreach (var (seq, line) in batch)
                {
                    after = seq;
                    if (BuildEventJson.Deserialize(line) is not { } buildEvent)
                    {
                        continue;
                    }

                    yield return new SequencedBuildEvent(seq, buildEvent);
                    if (buildEvent is BuildFinished or BuildFailed)
                    {
                        yield break;
                    }
                }

                if (batch.Count > 0)
                {
                    quietSince = _time.GetUtcNow();
                    continue;
                }

                if (!follow)
                {
                    if (!read)
                    {
                        // The stream has none of them (it expired, or Redis lost it): what the grain kept.
                        foreach (var entry in (await GetAsync(buildId, cancellationToken).ConfigureAwait(false)).EventsAfter(after))
                        {
                            yield return entry;
                        }
                    }

                    yield break;
                }

                if (_time.GetUtcNow() - quietSince > QuietCheck)
                {
                    // Quiet for a while: if the grain has the build as done, its end event (the stream lost it, or
                    // expired) ends the follow.
                    quietSince = _time.GetUtcNow();
                    if (await EndFromGrainAsync(buildId, after, cancellationToken).ConfigureAwait(false) is { } end)
                    {
                        yield return end;
                        yield break;
                    }
                }

                await wakeup!.WaitAsync(PollPeriod, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            if (wakeup is not null)
            {
                await wakeup.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>A follower reads the stream at least this often, even when no wake-up came.</summary>
    private static readonly TimeSpan PollPeriod = TimeSpan.FromSeconds(2);

    /// <summary>After this long without events, a follower asks the grain whether the build ended.</summary>
    private static readonly TimeSpan QuietCheck = TimeSpan.FromSeconds(15);

    /// <summary>The grain's end event of a done build, numbered above <paramref name="after"/>; null while it runs, or when the grain cannot answer now.</summary>
    private async Task<SequencedBuildEvent?> EndFromGrainAsync(Guid buildId, long after, CancellationToken cancellationToken)
    {
        BuildGrainStateV1? state;
        try
        {
            state = await _grains.GetGrain<IBuildGrain>(buildId).GetAsync().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Its silo may be gone and not yet declared dead: the follower waits on, and asks again later.
            LogGrainUnanswered(_logger, e, buildId);
            return null;
        }

        if (state is not { IsDone: true })
        {
            return null;
        }

        var record = BuildRecord.FromState(buildId, state);
        return record.EventsAfter(0) is [.., var last] && last.Event is BuildFinished or BuildFailed
            ? last with { Seq = Math.Max(last.Seq, after + 1) }
            : null;
    }

    /// <summary>
    /// Runs the build on this silo unless it runs here already or the silo is stopping; called by the build grain
    /// when a build is submitted and when it resumes one (<paramref name="resumedRun"/>: the run's number). The run
    /// reports to the grain as <paramref name="silo"/>, at least every <paramref name="heartbeat"/>. Returns at once.
    /// </summary>
    internal bool Start(SubmitBuild submission, DateTimeOffset submittedAt, ImmutableArray<string> pastEvents, int? resumedRun, string silo, TimeSpan heartbeat)
    {
        lock (_running)
        {
            if (_stopping.IsCancellationRequested || _running.ContainsKey(submission.BuildId))
            {
                return false;
            }

            var record = Registry.GetOrAdd(submission, submittedAt, pastEvents);
            var forwarder = new GrainEventForwarder(_grains.GetGrain<IBuildGrain>(submission.BuildId), silo, heartbeat, () => Snapshot(record, silo), _logger, _stopping.Token);
            var cancel = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            var run = Task.Run(() => RunAsync(record, forwarder, resumedRun, cancel.Token));
            _running[submission.BuildId] = run;
            _cancels[submission.BuildId] = cancel;
            _ = run.ContinueWith(
                _ =>
                {
                    lock (_running)
                    {
                        _running.Remove(submission.BuildId);
                        _cancels.Remove(submission.BuildId);
                    }

                    cancel.Dispose();
                    EnforceCacheCap();
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            return true;
        }
    }

    /// <summary>
    /// Persists every build running on this silo again in its grain, with its resume reminder: Redis lost its data
    /// (<see cref="Cluster.RedisLossMonitor"/>). Returns how many builds were restored.
    /// </summary>
    internal async Task<int> RestoreGrainsAsync(string silo, CancellationToken cancellationToken)
    {
        Guid[] running;
        lock (_running)
        {
            running = [.. _running.Keys];
        }

        var restored = 0;
        foreach (var id in running)
        {
            if (Registry.TryGet(id, out var record) && !record.IsDone)
            {
                await _grains.GetGrain<IBuildGrain>(id).RestoreAsync(Snapshot(record, silo)).WaitAsync(cancellationToken).ConfigureAwait(false);
                restored++;
            }
        }

        return restored;
    }

    /// <summary>What this silo knows of a build it runs, for its grain to persist again.</summary>
    private static BuildSnapshot Snapshot(BuildRecord record, string silo)
    {
        var events = record.Events;
        return new BuildSnapshot
        {
            Submission = JsonSerializer.Serialize(record.Submission, BuildEventJson.Options),
            SubmittedAt = record.SubmittedAt,
            Events = [.. events.TakeLast(BuildGrain.EventTail).Select(BuildEventJson.Serialize)],
            Run = events.OfType<BuildResumed>().LastOrDefault()?.Run ?? 1,
            Silo = silo,
        };
    }

    /// <summary>Hands the build to its grain, which records it and starts it (on this silo: the grain is placed here).</summary>
    private async Task SubmitToGrainAsync(BuildRecord record)
    {
        try
        {
            var state = await _grains.GetGrain<IBuildGrain>(record.BuildId).SubmitAsync(record.Submission, record.SubmittedAt).ConfigureAwait(false);
            if (!string.Equals(BuildRecord.FromState(record.BuildId, state).Submission.Tenant, record.Submission.Tenant, StringComparison.Ordinal))
            {
                // The id was another tenant's build, submitted on another coordinator: this submission never becomes a
                // build, and its record here must not show that build's events to this tenant.
                Registry.Remove(record.BuildId);
                _credentials.Release(record.BuildId);
                Secrets.Release(record.BuildId);
                _contextUrls.TryRemove(record.BuildId, out _);
                LogIdTaken(_logger, record.BuildId);
                return;
            }

            bool runsHere;
            lock (_running)
            {
                runsHere = _running.ContainsKey(record.BuildId);
            }

            if (!runsHere && record.Events.Count == 0)
            {
                // Known before (a redelivered submission, or one sent to another coordinator too): show what is stored.
                foreach (var line in state.Events)
                {
                    record.AddLine(line);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _credentials.Release(record.BuildId);
            Secrets.Release(record.BuildId);
            _contextUrls.TryRemove(record.BuildId, out _);
            var error = new BuildNotRecordedException(e);
            LogFailed(_logger, e, record.BuildId, error.Code);
            record.Add(new BuildFailed(record.BuildId, _time.GetUtcNow(), error.Code, error.Message));
            await PublishAsync(new BuildCompleted { BuildId = record.BuildId, Succeeded = false, ErrorCode = error.Code, Error = error.Message, Tenant = record.Submission.Tenant }).ConfigureAwait(false);
        }
    }

    private async Task RunAsync(BuildRecord record, GrainEventForwarder forwarder, int? resumedRun, CancellationToken cancellationToken)
    {
        record.MarkRunning();
        using var span = CoordinatorTelemetry.StartBuild(record.Submission);
        var shared = _stream is null ? null : await SharedStreamAsync(record, cancellationToken).ConfigureAwait(false);
        var progress = new RecordProgress(record, forwarder, shared, _stopping.Token);
        if (resumedRun is { } run)
        {
            progress.Report(new BuildResumed(record.BuildId, _time.GetUtcNow(), Environment.MachineName + "/" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), run));
        }

        try
        {
            var access = _credentials.For(record.Submission);
            Secrets.Check(record.Submission);
            var orchestrator = await OrchestratorAsync(cancellationToken).ConfigureAwait(false);
            var request = await LoadRequestAsync(orchestrator, record.Submission, progress, cancellationToken).ConfigureAwait(false);
            await orchestrator.RunAsync(request with { RegistryAccess = access, JobSecrets = JobSecretsOf(record.Submission) }, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && !_stopping.IsCancellationRequested)
        {
            // Cancelled by its submitter: the orchestrator withdrew from its layer grains (stopping jobs no other
            // build awaits) and named or pushed nothing; the grain records the end, so no silo resumes it.
            var cancelled = new BuildCancelledException();
            progress.Report(new BuildFailed(record.BuildId, _time.GetUtcNow(), cancelled.Code, cancelled.Message));
            LogCancelled(_logger, e, record.BuildId);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested)
        {
            // The silo stops: the build stays running in its grain, whose reminder resumes it on a silo still up.
            // Followers on this silo learn that this silo gave it up; nothing of it reaches the grain.
            var abandoned = new BuildAbandonedException();
            record.Add(new BuildFailed(record.BuildId, _time.GetUtcNow(), abandoned.Code, abandoned.Message));
            LogAbandoned(_logger, e, record.BuildId);
        }
        catch (Exception e)
        {
            // The orchestrator reports its own failures; one before it ran (the context index, the cache) is reported here.
            var code = e is FarmException farm ? farm.Code : FarmErrorCodes.BuildInternal;
            progress.Report(new BuildFailed(record.BuildId, _time.GetUtcNow(), code, e.Message));
            LogFailed(_logger, e, record.BuildId, (record.End as BuildFailed)?.Code ?? code);
        }

        // Passed registry credentials live no longer than the build's run here (a silo that resumes it has none).
        _credentials.Release(record.BuildId);
        Secrets.Release(record.BuildId);
        _contextUrls.TryRemove(record.BuildId, out _);
        if (!_stopping.IsCancellationRequested)
        {
            CoordinatorTelemetry.BuildEnded(span, record.End, _time.GetUtcNow() - record.SubmittedAt);
        }

        await forwarder.CompleteAsync().ConfigureAwait(false);
        if (shared is not null)
        {
            await shared.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The writer of this run's events to the shared stream; the run numbers its events on from the stream's last
    /// one (a resumed run continues after what an earlier run stored, even what its grain never got).
    /// </summary>
    private async Task<StreamEventForwarder> SharedStreamAsync(BuildRecord record, CancellationToken cancellationToken)
    {
        var stream = _stream!;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var last = await stream.LastSeqAsync(record.BuildId, timeout.Token).ConfigureAwait(false);
            if (last > 0)
            {
                record.ContinueAfter(last);
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // Numbered on from the grain's tail: an event the stream has already under a number is skipped there.
            LogStreamUnavailable(_logger, e, record.BuildId);
        }

        return new StreamEventForwarder(stream, record.BuildId, _logger);
    }

    /// <summary>
    /// The submission as a request: its context index from the cache store, or, from the local farm's client, its
    /// context directory packed here (read in place, through the stat cache) into the cache store.
    /// </summary>
    /// <exception cref="LocalOnlySubmissionException">A path on this machine was named to a shared coordinator (FARM4214).</exception>
    private async Task<BuildRequest> LoadRequestAsync(BuildOrchestrator orchestrator, SubmitBuild submission, IProgress<BuildEvent> progress, CancellationToken cancellationToken)
    {
        if (!_options.LocalClient && (submission.ContextDirectory is not null || submission.Output is not null))
        {
            throw new LocalOnlySubmissionException(submission.ContextDirectory is not null ? "contextDirectory" : "output");
        }

        if (!_options.LocalClient && submission.Options?.NamedContexts.Any(c => c.Directory is not null) == true)
        {
            throw new LocalOnlySubmissionException("options.namedContexts[].directory");
        }

        if (submission.Entitlements.FirstOrDefault(e => !_options.Entitlements.Contains(e, StringComparer.Ordinal)) is { } ungranted)
        {
            throw EntitlementNotGrantedException.NotGranted(ungranted, _options.Entitlements);
        }

        if (submission.ContextUrl is { } url)
        {
            // Fetched here once, before planning, into the cache store as an uploaded context is: from here on the
            // build is one like any other (a coordinator that resumes it fetches again, and a git ref that has not
            // moved comes from the cache).
            await OrchestratorAsync(cancellationToken).ConfigureAwait(false);
            // With the user information it was submitted with, when this coordinator holds it; a coordinator that resumes
            // the build has none, and fetches without (the URL in the submission has only ***).
            var fetchUrl = _contextUrls.TryGetValue(submission.BuildId, out var full) ? url with { Url = full } : url with { Url = url.Url.Replace("://***@", "://", StringComparison.Ordinal) };
            var fetched = await _urlContexts!.FetchAsync(submission, fetchUrl, cancellationToken).ConfigureAwait(false);
            progress.Report(new ContextFetched(submission.BuildId, _time.GetUtcNow(), url.Kind, GitSource.Redact(url.Url), fetched.Commit, fetched.ContextDigest, fetched.Bytes, fetched.Cached));
            submission = submission with { ContextDigest = fetched.ContextDigest, ContextIndexDigest = fetched.IndexDigest, Dockerfile = fetched.Dockerfile };
        }

        BuildRequest request;
        if (submission.ContextDirectory is { } directory)
        {
            var (digest, index) = await PackInPlaceAsync(submission, directory, submission.DockerfileLocation ?? Path.Combine(directory, "Dockerfile"), progress, cancellationToken).ConfigureAwait(false);
            request = BuildRequest.From(submission with { ContextDigest = digest, ContextIndexDigest = index.Digest }, index.Index, CacheStore);
            var named = new Dictionary<string, NamedContextInput>(StringComparer.Ordinal);
            foreach (var context in submission.Options?.NamedContexts ?? [])
            {
                if (context.Directory is { } namedDirectory)
                {
                    // A named context's own .dockerignore applies, as its Dockerfile would be beside it.
                    var (namedDigest, namedIndex) = await PackInPlaceAsync(submission, namedDirectory, Path.Combine(namedDirectory, "Dockerfile"), progress: null, cancellationToken).ConfigureAwait(false);
                    named[context.Name] = new NamedContextInput(namedDigest, namedIndex.Index);
                }
            }

            request = request with { NamedContexts = named };
        }
        else
        {
            request = await orchestrator.LoadRequestAsync(submission, CacheStore, cancellationToken).ConfigureAwait(false);
        }

        return request with
        {
            Output = submission.Output is { } output ? OutputSpec.Parse(output) : null,
            LocalImages = _localImages,
        };
    }

    /// <summary>Packs a directory in place (through the stat cache) into the cache store: the tar's digest and the index.</summary>
    private async Task<(string Digest, (string Digest, ContextIndex Index) Index)> PackInPlaceAsync(SubmitBuild submission, string directory, string dockerfile, IProgress<BuildEvent>? progress, CancellationToken cancellationToken)
    {
        var store = await _stores.OpenAsync(CacheStore, cancellationToken).ConfigureAwait(false);
        var packed = await PackedContext.PackAsync(
            directory,
            dockerfile,
            Path.Combine(_options.StateDirectory, "tmp"),
            progress: null,
            cancellationToken,
            ContextStatCache.In(_options.StateDirectory),
            store.StatAsync).ConfigureAwait(false);
        await using (packed.ConfigureAwait(false))
        {
            if (packed.TarPath is not null && await store.StatAsync(packed.Tar.Digest, cancellationToken).ConfigureAwait(false) is null)
            {
                var tar = packed.OpenTar();
                await using (tar.ConfigureAwait(false))
                {
                    await store.PutAsync(packed.Tar, tar, cancellationToken).ConfigureAwait(false);
                }
            }

            var info = packed.Packed;
            progress?.Report(new ContextPacked(submission.BuildId, _time.GetUtcNow(), info.Files, info.Bytes, info.Digest.ToString(), Math.Round(info.Duration.TotalMilliseconds, 1)));
            return (packed.Tar.Digest.ToString(), (packed.IndexDescriptor.Digest.ToString(), packed.Index));
        }
    }

    /// <summary>
    /// Cancels build <paramref name="buildId"/> when it runs here (its stream then ends with FARM4215); false when it
    /// does not run here (finished, unknown, or running on another coordinator).
    /// </summary>
    public bool Cancel(Guid buildId)
    {
        lock (_running)
        {
            if (!_cancels.TryGetValue(buildId, out var cancel))
            {
                return false;
            }

            cancel.Cancel();
            return true;
        }
    }

    /// <summary>The build cache's usage and eviction (<c>/system/df</c>, <c>/system/prune</c>).</summary>
    public async Task<BuildCacheJanitor> CacheJanitorAsync(CancellationToken cancellationToken)
    {
        await OrchestratorAsync(cancellationToken).ConfigureAwait(false);
        return _janitor!;
    }

    /// <summary>Whether a prune deletes blobs here: the local farm, whose cache store is its image store.</summary>
    /// <summary>Whether SSH agents (sockets on the client's machine) may be passed: only to the local farm.</summary>
    public bool AcceptsSshAgents => _options.LocalClient;

    /// <summary>
    /// Whether build secrets may be passed: where the worker runs in this process and takes them from its memory (the
    /// local farm), or where workers in processes of their own can be told this coordinator's address to fetch them
    /// from with their job's credential (<see cref="JobSecretsEndpoint"/>).
    /// </summary>
    public bool AcceptsSecrets => _coordinator.InProcessWorker ? _options.LocalClient : _jobSecrets?.Url is not null;

    /// <summary>The job credentials of a run of <paramref name="submission"/>: null in-process, or without secrets.</summary>
    private BuildJobSecrets? JobSecretsOf(SubmitBuild submission) =>
        _coordinator.InProcessWorker || submission.SecretIds.Count == 0 || _jobSecrets?.Url is not { } url
            ? null
            : new BuildJobSecrets(Secrets, submission.BuildId, url);

    public bool DeletesBlobsOnPrune => _localImages is not null && _options.LocalClient;

    /// <summary>The layer grain of a pruned key forgets its layer too: it would otherwise hand it out without the action cache.</summary>
    private Task ForgetLayerAsync(string key, CancellationToken cancellationToken) =>
        _grains.GetGrain<ILayerGrain>(key).ForgetAsync().WaitAsync(cancellationToken);

    /// <summary>
    /// The local farm's cap (<see cref="BuildServiceOptions.CacheMaxBytes"/>), enforced in the background after a
    /// build once no build runs: a running build may hold a hit whose layer eviction would delete under it.
    /// </summary>
    private void EnforceCacheCap()
    {
        if (_options.CacheMaxBytes <= 0 || _janitor is not { } janitor || _localImages is null || !_options.LocalClient
            || RunningCount > 0 || _stopping.IsCancellationRequested || Interlocked.Exchange(ref _capRunning, 1) == 1)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                var pruned = await janitor.PruneAsync(new BuildCachePrune(null, _options.CacheMaxBytes), _stopping.Token).ConfigureAwait(false);
                if (pruned.EntriesRemoved > 0)
                {
                    LogCacheCapped(_logger, pruned.EntriesRemoved, pruned.ReclaimedBytes, _options.CacheMaxBytes);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The cap is housekeeping: a failure is logged and tried again after the next build.
                LogCacheCapFailed(_logger, e);
            }
            finally
            {
                Volatile.Write(ref _capRunning, 0);
            }
        });
    }

    /// <summary>
    /// The cap on a shared coordinator (<see cref="BuildServiceOptions.CacheMaxBytes"/>): every
    /// <see cref="BuildServiceOptions.CacheCapInterval"/>, whether builds run or not, since evicting deletes no blob here
    /// (a running build's hit stays in the registry until its garbage collection, which runs with builds stopped).
    /// </summary>
    private void StartSharedCacheCap()
    {
        if (_options.CacheMaxBytes <= 0 || DeletesBlobsOnPrune || _options.LocalClient)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(_options.CacheCapInterval, _time);
            try
            {
                while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
                {
                    try
                    {
                        await CapSharedCacheAsync(_stopping.Token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
                    {
                        LogCacheCapFailed(_logger, e);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // This coordinator stops; another one's timer goes on.
            }
        });
    }

    /// <summary>
    /// One enforcement of the cap, by one coordinator of the cluster at a time: the one that takes the Redis lock
    /// <see cref="CacheCapLockKey"/> for the interval, holding it while it prunes and letting it expire afterwards, so
    /// the cluster prunes at most once per interval. Without Redis the coordinator is alone.
    /// </summary>
    private async Task CapSharedCacheAsync(CancellationToken cancellationToken)
    {
        var janitor = await CacheJanitorAsync(cancellationToken).ConfigureAwait(false);
        var interval = _options.CacheCapInterval;
        var owner = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";
        var database = _redis?.GetDatabase();
        if (database is not null && !await database.LockTakeAsync(CacheCapLockKey, owner, interval).WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var holding = database is null ? Task.CompletedTask : HoldLockAsync(database, owner, interval, done.Token);
        try
        {
            var pruned = await janitor.PruneAsync(new BuildCachePrune(null, _options.CacheMaxBytes), cancellationToken).ConfigureAwait(false);
            if (pruned.EntriesRemoved > 0)
            {
                LogSharedCacheCapped(_logger, pruned.EntriesRemoved, pruned.UnreferencedBytes, _options.CacheMaxBytes, pruned.ReferencesKept, pruned.Warning ?? string.Empty);
            }
        }
        finally
        {
            await done.CancelAsync().ConfigureAwait(false);
            await holding.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Keeps the cap's lock while a prune runs longer than half the interval.</summary>
    private static async Task HoldLockAsync(IDatabase database, string owner, TimeSpan interval, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(interval / 2, cancellationToken).ConfigureAwait(false);
            await database.LockExtendAsync(CacheCapLockKey, owner, interval).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The Redis key of the shared cache cap's lock.</summary>
    public const string CacheCapLockKey = "farm:ac-cap";

    [LoggerMessage(Level = LogLevel.Information, Message = "Build cache over its cap of {CapBytes} bytes: evicted {Entries} entries, least recently used first; the registry's garbage collection may free {Bytes} bytes of layers no entry uses. Cache manifests kept: {Kept} {Warning}")]
    private static partial void LogSharedCacheCapped(ILogger logger, int entries, long bytes, long capBytes, int kept, string warning);

    [LoggerMessage(Level = LogLevel.Information, Message = "Build cache over its cap of {CapBytes} bytes: evicted {Entries} entries, least recently used first, freeing {Bytes} bytes")]
    private static partial void LogCacheCapped(ILogger logger, int entries, long bytes, long capBytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The build cache's cap could not be enforced")]
    private static partial void LogCacheCapFailed(ILogger logger, Exception exception);

    /// <summary>Publishes the end of a build; a failure is logged, not thrown (the build's state holds the outcome).</summary>
    internal async Task PublishAsync(BuildCompleted completed)
    {
        try
        {
            using var publishTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _bus.Publish(completed, publishTimeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The registry holds the outcome either way; a lost event only costs subscribers of the bus.
            LogPublishFailed(_logger, e, completed.BuildId);
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
                Explain.IKeyInputHistory history;
                if (string.IsNullOrWhiteSpace(_coordinator.Redis))
                {
                    inner = new FileActionCache(Path.Combine(_options.StateDirectory, "action-cache"));
                    history = new Explain.FileKeyInputHistory(Path.Combine(_options.StateDirectory, "lineage"));
                }
                else
                {
                    _redis = await ConnectionMultiplexer.ConnectAsync(FarmRedis.Configuration(_coordinator)).ConfigureAwait(false);
                    inner = new RedisActionCache(_redis);
                    history = new Explain.RedisKeyInputHistory(_redis);
                }

                var store = await _stores.OpenAsync(CacheStore, cancellationToken).ConfigureAwait(false);
                // A registry cache store: every entry's layer is kept referenced by a manifest, so the registry's
                // garbage collection spares it until the entry is evicted.
                var referenced = store is Oci.RegistryBlobStore registry
                    ? new ReferencingActionCache(inner, registry, _loggers.CreateLogger<ReferencingActionCache>())
                    : inner;
                var cache = new VerifyingActionCache(referenced, store, _loggers.CreateLogger<VerifyingActionCache>());
                // The local farm's cache store is its image store: prune deletes layers there, never one an image needs.
                var local = DeletesBlobsOnPrune ? _localImages : null;
                _janitor = new BuildCacheJanitor((IActionCacheInventory)inner, referenced, CacheStore, local is null ? null : local.StoreAsync, ForgetLayerAsync, _time, referenced as ReferencingActionCache);
                var policy = new UrlContexts.UrlContextPolicy(_options.UrlContexts, FarmServices());
                _urlContexts = new UrlContexts.UrlContextFetcher(
                    policy,
                    store,
                    new VerifyingActionCache(inner, store, _loggers.CreateLogger<VerifyingActionCache>()),
                    Path.Combine(_options.StateDirectory, "tmp"));
                _orchestrator = new BuildOrchestrator(_layers, cache, _stores, _logs, logger: _loggers.CreateLogger<BuildOrchestrator>(), history: history, livePlatforms: LivePlatforms, gitFence: _options.LocalClient ? null : policy.Fence);
            }

            return _orchestrator;
        }
        finally
        {
            _initLock.Release();
        }
    }

    /// <summary>The farm's own services, which a URL context may never name: Redis, RabbitMQ and the cache store's registry.</summary>
    private List<(string Host, int Port)> FarmServices()
    {
        var services = new List<(string Host, int Port)>();
        if (!string.IsNullOrWhiteSpace(_coordinator.Redis))
        {
            foreach (var endpoint in ConfigurationOptions.Parse(_coordinator.Redis, ignoreUnknown: true).EndPoints)
            {
                switch (endpoint)
                {
                    case System.Net.DnsEndPoint dns:
                        services.Add((dns.Host, dns.Port == 0 ? 6379 : dns.Port));
                        break;
                    case System.Net.IPEndPoint ip:
                        services.Add((ip.Address.ToString(), ip.Port == 0 ? 6379 : ip.Port));
                        break;
                }
            }
        }

        if (_rabbitMq is { } rabbit)
        {
            services.Add((rabbit.Host, rabbit.Port));
        }

        foreach (var store in new[] { CacheStore, ClientCacheStore })
        {
            const string scheme = "registry://";
            if (store.StartsWith(scheme, StringComparison.Ordinal) && Uri.TryCreate("http://" + store[scheme.Length..], UriKind.Absolute, out var registry))
            {
                services.Add((registry.Host, registry.Port));
            }
        }

        return services;
    }

    /// <summary>What the live workers run, all together; null while this coordinator has heard of none.</summary>
    private IReadOnlyList<string>? LivePlatforms(string platform) =>
        _workers?.All is { Count: > 0 } live ? [.. live.SelectMany(w => w.Platforms ?? [FarmPlatforms.Default]).Distinct(StringComparer.Ordinal)] : null;

    /// <summary>
    /// Stops the builds running on this silo before the silo stops (they stay running in their grains, which resume
    /// them on a silo still up); in this silo's registry they end as failed, FARM4212.
    /// </summary>
    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe(
            nameof(BuildService),
            ServiceLifecycleStage.Active,
            _ =>
            {
                StartSharedCacheCap();
                return Task.CompletedTask;
            },
            _ => StopRunsAsync());
    }

    private async Task StopRunsAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task[] running;
        lock (_running)
        {
            running = [.. _running.Values];
        }

        try
        {
            await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            LogStopTimedOut(_logger, e, running.Length);
        }
    }

    /// <summary>Stops the builds running here (see <see cref="Participate"/>) and closes the cache connection.</summary>
    public async ValueTask DisposeAsync()
    {
        // The container disposes this once per registration (the service and the lifecycle participant).
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await StopRunsAsync().ConfigureAwait(false);
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }

        _initLock.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the build's grain did not answer a follower")]
    private static partial void LogGrainUnanswered(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the shared event stream cannot be read; events are numbered on from the grain's")]
    private static partial void LogStreamUnavailable(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: {Count} events could not be stored in the shared event stream")]
    private static partial void LogNotStreamed(ILogger logger, Exception exception, Guid buildId, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId} cancelled by its submitter")]
    private static partial void LogCancelled(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId} queued for {Tags} (tenant {Tenant})")]
    private static partial void LogQueued(ILogger logger, Guid buildId, string tags, string tenant);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the id is another tenant's build; this submission was dropped")]
    private static partial void LogIdTaken(ILogger logger, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId} failed with {Code}")]
    private static partial void LogFailed(ILogger logger, Exception exception, Guid buildId, string code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The completion of build {BuildId} could not be published")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} builds did not stop within 30 s")]
    private static partial void LogStopTimedOut(ILogger logger, Exception exception, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId} given up on this silo as it stops; its grain resumes it elsewhere")]
    private static partial void LogAbandoned(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: its grain no longer knows it (Redis lost its data); restoring it from this run")]
    private static partial void LogRestoring(ILogger logger, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: {Count} events could not be recorded in the build grain")]
    private static partial void LogNotForwarded(ILogger logger, Exception exception, Guid buildId, int count);

    /// <summary>
    /// Records each event synchronously in the local record (in the order the orchestrator reports them, which numbers
    /// it) and, unless the silo stops, passes it to the build grain and the shared stream.
    /// </summary>
    private sealed class RecordProgress(BuildRecord record, GrainEventForwarder forwarder, StreamEventForwarder? shared, CancellationToken stopping) : IProgress<BuildEvent>
    {
        private readonly Lock _order = new();

        public void Report(BuildEvent value)
        {
            // Steps report from many threads at once: numbering and posting happen together, so the forwarders get the
            // events in their numbers' order. (Posted apart, event 10 could reach the shared stream before event 9,
            // which Redis then refused as not above the last id: a follower on another coordinator lost a log line.)
            lock (_order)
            {
                var seq = record.Append(value);
                if (seq > 0 && !stopping.IsCancellationRequested)
                {
                    var line = BuildEventJson.Serialize(new SequencedBuildEvent(seq, value));
                    forwarder.Post(line);
                    shared?.Post(seq, line);
                }
            }
        }
    }

    /// <summary>
    /// Appends events to the shared stream in order, batching what piles up while an append is in flight; a failed
    /// append is retried a few times (numbers already stored are skipped, so a retry stores nothing twice). What still
    /// fails is missing for followers on other coordinators, who learn the build's end from its grain.
    /// </summary>
    private sealed class StreamEventForwarder
    {
        private readonly Channel<(long, string)> _events = Channel.CreateUnbounded<(long, string)>(new UnboundedChannelOptions { SingleReader = true });
        private readonly BuildEventStream _stream;
        private readonly Guid _buildId;
        private readonly ILogger _logger;
        private readonly Task _pump;

        public StreamEventForwarder(BuildEventStream stream, Guid buildId, ILogger logger)
        {
            _stream = stream;
            _buildId = buildId;
            _logger = logger;
            _pump = Task.Run(PumpAsync, CancellationToken.None);
        }

        public void Post(long seq, string line) => _events.Writer.TryWrite((seq, line));

        public Task CompleteAsync()
        {
            _events.Writer.TryComplete();
            return _pump;
        }

        private async Task PumpAsync()
        {
            var batch = new List<(long, string)>();
            while (await _events.Reader.WaitToReadAsync().ConfigureAwait(false))
            {
                batch.Clear();
                while (_events.Reader.TryRead(out var entry))
                {
                    batch.Add(entry);
                }

                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                        await _stream.AppendAsync(_buildId, batch, timeout.Token).ConfigureAwait(false);
                        break;
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        if (attempt == 5)
                        {
                            LogNotStreamed(_logger, e, _buildId, batch.Count);
                            break;
                        }

                        await Task.Delay(TimeSpan.FromMilliseconds(250 << attempt), CancellationToken.None).ConfigureAwait(false);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Sends events to the build grain in order, batching what piles up while a call is in flight; a failed call is
    /// retried a few times (the grain may be moving between silos). What still fails is lost to the grain only: the
    /// build then stays unfinished there, and its reminder runs it again (every step a cache hit).
    /// </summary>
    private sealed class GrainEventForwarder
    {
        private readonly Channel<string> _events = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        private readonly IBuildGrain _grain;
        private readonly string _silo;
        private readonly TimeSpan _heartbeat;
        private readonly Func<BuildSnapshot> _snapshot;
        private readonly ILogger _logger;
        private readonly CancellationToken _stopping;
        private readonly Task _pump;

        public GrainEventForwarder(IBuildGrain grain, string silo, TimeSpan heartbeat, Func<BuildSnapshot> snapshot, ILogger logger, CancellationToken stopping)
        {
            _grain = grain;
            _silo = silo;
            _heartbeat = heartbeat;
            _snapshot = snapshot;
            _logger = logger;
            _stopping = stopping;
            _pump = Task.Run(PumpAsync, CancellationToken.None);
        }

        public void Post(string line) => _events.Writer.TryWrite(line);

        public Task CompleteAsync()
        {
            _events.Writer.TryComplete();
            return _pump;
        }

        private async Task PumpAsync()
        {
            var batch = new List<string>();
            while (await WaitAsync().ConfigureAwait(false))
            {
                batch.Clear();
                while (_events.Reader.TryRead(out var line))
                {
                    batch.Add(line);
                }

                if (_stopping.IsCancellationRequested)
                {
                    // No heartbeat from a silo that gives its builds up: another one takes them at once.
                    continue;
                }

                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        if (!await _grain.RecordAsync([.. batch], _silo).ConfigureAwait(false))
                        {
                            // The grain lost the build with Redis's data: persist it again from this run's record
                            // (which holds this batch already), reminder included.
                            LogRestoring(_logger, _grain.GetPrimaryKey());
                            await _grain.RestoreAsync(_snapshot()).ConfigureAwait(false);
                        }

                        break;
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        if (_stopping.IsCancellationRequested || attempt == 5)
                        {
                            LogNotForwarded(_logger, e, _grain.GetPrimaryKey(), batch.Count);
                            break;
                        }

                        await Task.Delay(TimeSpan.FromMilliseconds(250 << attempt), CancellationToken.None).ConfigureAwait(false);
                    }
                }
            }
        }

        /// <summary>True when events are there or the heartbeat is due (an empty batch); false once completed and drained.</summary>
        private async Task<bool> WaitAsync()
        {
            using var beat = new CancellationTokenSource(_heartbeat);
            try
            {
                return await _events.Reader.WaitToReadAsync(beat.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (beat.IsCancellationRequested)
            {
                return true;
            }
        }
    }
}
