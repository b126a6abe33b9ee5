using System.Collections.Immutable;
using System.Text.Json;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Storage;

namespace Farm.Coordinator.Grains;

/// <summary>
/// The state machine of one build. While the build is not done the grain holds a reminder: when the silo running
/// the build stops, the reminder fires on a silo that is still up, the grain activates there from its persisted
/// state, and activation starts the build again on that silo (<see cref="BuildService.Start"/>). Steps already built
/// are action-cache hits or remembered by their layer grains, so resuming re-runs the orchestrator without running
/// those jobs again.
/// </summary>
/// <remarks>
/// Placed on the silo that first calls it: the silo that accepted the submission runs the build (followers on any
/// silo read its events from the <see cref="BuildEventStream"/>). Grain code must not use ConfigureAwait(false).
/// </remarks>
[PreferLocalPlacement]
public sealed partial class BuildGrain : Grain, IBuildGrain, IRemindable
{
    /// <summary>Events kept in the persisted state: enough for a status page and the end of the logs.</summary>
    public const int EventTail = 400;

    /// <summary>The reminder every unfinished build holds (<see cref="Cluster.BuildTakeover"/> looks them up by this name).</summary>
    internal const string ResumeReminder = "farm-build-resume";

    private readonly IPersistentState<BuildGrainStateV1> _state;
    private readonly BuildService _builds;
    private readonly IClusterMembershipService _membership;
    private readonly string _silo;
    private readonly CoordinatorOptions _options;
    private readonly ILogger<BuildGrain> _logger;
    private IGrainTimer? _keepAlive;

    public BuildGrain(
        [PersistentState("build", CoordinatorHosting.BuildStorage)] IPersistentState<BuildGrainStateV1> state,
        BuildService builds,
        IClusterMembershipService membership,
        ILocalSiloDetails silo,
        IOptions<CoordinatorOptions> options,
        ILogger<BuildGrain> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(silo);
        _state = state;
        _builds = builds;
        _membership = membership;
        _silo = silo.SiloAddress.ToParsableString();
        _options = options.Value;
        _logger = logger;
    }

    private Guid BuildId => this.GetPrimaryKey();

    private bool Known => _state.RecordExists && !string.IsNullOrEmpty(_state.State?.Submission);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (Known && !_state.State.IsDone)
        {
            // Activated from persisted state while the build is not done: the silo that ran it went away, or this
            // grain moved while that silo still runs it (then Resume leaves it there).
            Resume();
        }

        return Task.CompletedTask;
    }

    public async Task<BuildGrainStateV1> SubmitAsync(SubmitBuild submission, DateTimeOffset submittedAt)
    {
        ArgumentNullException.ThrowIfNull(submission);
        if (Known)
        {
            return _state.State;
        }

        _state.State = new BuildGrainStateV1
        {
            Submission = JsonSerializer.Serialize(submission with { BuildId = BuildId }, BuildEventJson.Options),
            Status = BuildStatus.Queued,
            SubmittedAt = submittedAt,
            Runs = 1,
            Silo = _silo,
            Heartbeat = DateTimeOffset.UtcNow,
        };
        await _state.WriteStateAsync();
        await this.RegisterOrUpdateReminder(ResumeReminder, _options.ResumeCheckPeriod, _options.ResumeCheckPeriod);
        KeepAlive();
        _builds.Start(submission with { BuildId = BuildId }, submittedAt, [], resumedRun: null, _silo, HeartbeatPeriod);
        return _state.State;
    }

    public Task<BuildGrainStateV1?> GetAsync() => Task.FromResult(Known ? _state.State : null);

    public async Task<bool> RecordAsync(ImmutableArray<string> events, string silo)
    {
        if (!Known)
        {
            return false;
        }

        if (_state.State.IsDone)
        {
            return true;
        }

        var state = _state.State with { Silo = silo, Heartbeat = DateTimeOffset.UtcNow };
        foreach (var line in events)
        {
            if (state.IsDone)
            {
                break;
            }

            state = Apply(state, line, BuildEventJson.Deserialize(line));
        }

        _state.State = state;
        await WriteAsync();
        if (state.IsDone)
        {
            await EndAsync(state);
        }

        return true;
    }

    public async Task RestoreAsync(BuildSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (!Known)
        {
            var state = new BuildGrainStateV1
            {
                Submission = snapshot.Submission,
                Status = BuildStatus.Queued,
                SubmittedAt = snapshot.SubmittedAt,
                Runs = snapshot.Run,
                Silo = snapshot.Silo,
                Heartbeat = DateTimeOffset.UtcNow,
            };
            foreach (var line in snapshot.Events)
            {
                if (state.IsDone)
                {
                    break;
                }

                state = Apply(state, line, BuildEventJson.Deserialize(line));
            }

            _state.State = state;
            LogRestored(_logger, BuildId, snapshot.Run, snapshot.Silo);
        }

        await WriteAsync();
        if (_state.State.IsDone)
        {
            await EndAsync(_state.State);
            return;
        }

        // Redis may have lost the reminder with the state: without it no silo would resume the build.
        await this.RegisterOrUpdateReminder(ResumeReminder, _options.ResumeCheckPeriod, _options.ResumeCheckPeriod);
        KeepAlive();
    }

    public Task CheckRunAsync()
    {
        if (Known && !_state.State.IsDone)
        {
            Resume();
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Writes the state. When Redis lost the stored record (it restarted empty), the write's etag no longer matches:
    /// the state this activation holds is written again as a new record, with the reminder that resumes the build.
    /// A record someone else wrote meanwhile wins (the exception goes on, and Orleans deactivates this activation).
    /// </summary>
    private async Task WriteAsync()
    {
        try
        {
            await _state.WriteStateAsync();
        }
        catch (InconsistentStateException e)
        {
            var held = _state.State;
            await _state.ReadStateAsync();
            if (_state.RecordExists)
            {
                throw;
            }

            LogStateLost(_logger, e, BuildId);
            _state.State = held;
            await _state.WriteStateAsync();
            if (!held.IsDone)
            {
                await this.RegisterOrUpdateReminder(ResumeReminder, _options.ResumeCheckPeriod, _options.ResumeCheckPeriod);
            }
        }
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (!Known || _state.State.IsDone)
        {
            // Nothing to carry on: a reminder that outlived its build (the unregistration failed).
            await RemoveReminderAsync();
            return;
        }

        Resume();
    }

    /// <summary>How often a run reports that it is alive: well within the staleness <see cref="RunsElsewhere"/> allows.</summary>
    private TimeSpan HeartbeatPeriod => _options.ResumeCheckPeriod / 2;

    /// <summary>
    /// Starts the build on this silo unless it runs here already, or runs on another silo that is active and whose
    /// run reported within three check periods; the state records the new run.
    /// </summary>
    private void Resume()
    {
        KeepAlive();
        var state = _state.State;
        if (RunsElsewhere(state))
        {
            return;
        }

        var run = state.Runs + 1;
        SubmitBuild submission;
        try
        {
            submission = JsonSerializer.Deserialize<SubmitBuild>(state.Submission, BuildEventJson.Options)
                ?? throw new JsonException("the stored submission is null");
        }
        catch (JsonException e)
        {
            LogUnreadable(_logger, e, BuildId);
            return;
        }

        if (_builds.Start(submission, state.SubmittedAt, state.Events, resumedRun: run, _silo, HeartbeatPeriod))
        {
            LogResumed(_logger, BuildId, run, RuntimeIdentity);
            _state.State = state with { Runs = run, Silo = _silo, Heartbeat = DateTimeOffset.UtcNow };
        }
    }

    private bool RunsElsewhere(BuildGrainStateV1 state)
    {
        if (state.Silo == _silo || string.IsNullOrEmpty(state.Silo))
        {
            return false;
        }

        var active = _membership.CurrentSnapshot.GetSiloStatus(SiloAddress.FromParsableString(state.Silo)) == SiloStatus.Active;
        return active && state.Heartbeat is { } beat && DateTimeOffset.UtcNow - beat < 3 * _options.ResumeCheckPeriod;
    }

    private void KeepAlive()
    {
        // A build can run for longer than the idle collection age, and its only calls are its own events: keep the
        // grain active while the build runs, so it never reactivates (and resumes) on another silo meanwhile.
        _keepAlive ??= this.RegisterGrainTimer(
            static _ => Task.CompletedTask,
            new GrainTimerCreationOptions { DueTime = TimeSpan.FromMinutes(1), Period = TimeSpan.FromMinutes(1), KeepAlive = true });
    }

    private static BuildGrainStateV1 Apply(BuildGrainStateV1 state, string line, BuildEvent? buildEvent)
    {
        var tail = state.Events.Length >= EventTail ? state.Events.RemoveRange(0, state.Events.Length - EventTail + 1) : state.Events;
        state = state with { Events = tail.Add(line) };
        switch (buildEvent)
        {
            case BuildStarted or BuildResumed or BaseImageResolved or StepLog:
                return state with { Status = BuildStatus.Running, StartedAt = state.StartedAt ?? buildEvent.At };
            case StepStarted started:
                var step = new BuildStepStateV1 { StepId = started.StepId, Display = started.Display, CacheKey = started.CacheKey, Started = started.At };
                return state with { Status = BuildStatus.Running, StartedAt = state.StartedAt ?? started.At, Steps = Upsert(state.Steps, step) };
            case StepFinished { Outcome: var o }:
                var finished = new BuildStepStateV1
                {
                    StepId = o.StepId,
                    Display = o.Display,
                    CacheKey = o.CacheKey,
                    Status = o.Cached ? "cached" : "built",
                    Worker = o.Worker,
                    Layer = o.Layer?.Digest,
                    Started = o.Started,
                    Finished = o.Finished,
                };
                return state with { Steps = Upsert(state.Steps, finished) };
            case BuildFinished done:
                return state with { Status = BuildStatus.Succeeded, FinishedAt = done.At, ImageDigest = done.ImageDigest, Pushed = [.. done.Pushed] };
            case BuildFailed failed:
                return state with { Status = BuildStatus.Failed, FinishedAt = failed.At, ErrorCode = failed.Code, Error = failed.Message };
            default:
                return state;
        }
    }

    private static ImmutableArray<BuildStepStateV1> Upsert(ImmutableArray<BuildStepStateV1> steps, BuildStepStateV1 step)
    {
        var index = steps.IndexOf(steps.FirstOrDefault(s => s.StepId == step.StepId)!);
        return index < 0 ? steps.Add(step) : steps.SetItem(index, step);
    }

    private async Task EndAsync(BuildGrainStateV1 state)
    {
        _keepAlive?.Dispose();
        _keepAlive = null;
        await RemoveReminderAsync();
        var tenant = JsonSerializer.Deserialize<SubmitBuild>(state.Submission, BuildEventJson.Options)?.Tenant;
        var completed = state.Status == BuildStatus.Succeeded
            ? new BuildCompleted { BuildId = BuildId, Succeeded = true, ImageDigest = state.ImageDigest, Pushed = state.Pushed, Tenant = tenant }
            : new BuildCompleted { BuildId = BuildId, Succeeded = false, ErrorCode = state.ErrorCode, Error = state.Error, Tenant = tenant };
        await _builds.PublishAsync(completed);
    }

    private async Task RemoveReminderAsync()
    {
        try
        {
            if (await this.GetReminder(ResumeReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The next tick finds the build done and tries again.
            LogReminderNotRemoved(_logger, e, BuildId);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId} resumed as run {Run} on {Silo}")]
    private static partial void LogResumed(ILogger logger, Guid buildId, int run, string silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: its stored state was gone (Redis lost its data); written again from this activation")]
    private static partial void LogStateLost(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: state restored from its run {Run} on {Silo} after Redis lost it")]
    private static partial void LogRestored(ILogger logger, Guid buildId, int run, string silo);

    [LoggerMessage(Level = LogLevel.Error, Message = "Build {BuildId}: the stored submission cannot be read; the build cannot be resumed")]
    private static partial void LogUnreadable(ILogger logger, Exception exception, Guid buildId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: its resume reminder could not be removed")]
    private static partial void LogReminderNotRemoved(ILogger logger, Exception exception, Guid buildId);
}
