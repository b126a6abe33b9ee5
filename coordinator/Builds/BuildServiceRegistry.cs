using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Farm.Contracts;

namespace Farm.Coordinator.Builds;

/// <summary>Where a submitted build is (persisted in the build grain's state: append members, never renumber).</summary>
[GenerateSerializer]
public enum BuildStatus
{
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// <summary>
/// The builds this silo runs or ran, by id, with their live events: in memory, forgotten when it restarts. The
/// durable state of every build of the farm is its <see cref="Grains.IBuildGrain"/>'s (<see cref="BuildService.GetAsync"/>).
/// </summary>
public sealed class BuildRegistry
{
    private readonly ConcurrentDictionary<Guid, BuildRecord> _builds = new();

    /// <summary>Records <paramref name="submit"/> (its <see cref="SubmitBuild.BuildId"/> set) as queued; a known id returns its record unchanged.</summary>
    public (BuildRecord Record, bool Added) Add(SubmitBuild submit, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(submit);
        var record = _builds.GetOrAdd(submit.BuildId, _ => new BuildRecord(submit, at));
        return (record, ReferenceEquals(record.Submission, submit));
    }

    /// <summary>
    /// The record of a build this silo starts: the one it accepted, or a new one holding the events a silo ran
    /// before (<paramref name="pastEvents"/>, as <see cref="BuildEventJson"/> lines) when it resumes a build.
    /// </summary>
    internal BuildRecord GetOrAdd(SubmitBuild submit, DateTimeOffset at, IEnumerable<string> pastEvents) =>
        _builds.GetOrAdd(submit.BuildId, _ => BuildRecord.From(submit, at, pastEvents));

    public bool TryGet(Guid buildId, out BuildRecord record) => _builds.TryGetValue(buildId, out record!);

    /// <exception cref="BuildNotFoundException">The id is unknown (FARM4210).</exception>
    public BuildRecord Get(Guid buildId) =>
        _builds.TryGetValue(buildId, out var record) ? record : throw new BuildNotFoundException(buildId);

    public IReadOnlyList<BuildRecord> All => [.. _builds.Values.OrderBy(b => b.SubmittedAt)];
}

/// <summary>One build: its status and every <see cref="BuildEvent"/> so far; followers get the rest as they happen.</summary>
public sealed class BuildRecord
{
    private readonly Lock _lock = new();
    private readonly List<BuildEvent> _events = [];
    private readonly List<Channel<BuildEvent>> _followers = [];
    private BuildStatus _status = BuildStatus.Queued;
    private BuildEvent? _end;

    internal BuildRecord(SubmitBuild submission, DateTimeOffset submittedAt)
    {
        Submission = submission;
        SubmittedAt = submittedAt;
    }

    /// <summary>A record of a build as persisted (its grain's state): its status and the tail of its events.</summary>
    internal static BuildRecord FromState(Guid buildId, Grains.BuildGrainStateV1 state)
    {
        var submission = System.Text.Json.JsonSerializer.Deserialize<SubmitBuild>(state.Submission, BuildEventJson.Options)!;
        var record = From(submission with { BuildId = buildId }, state.SubmittedAt, state.Events);
        lock (record._lock)
        {
            record._status = state.Status;
        }

        return record;
    }

    internal static BuildRecord From(SubmitBuild submission, DateTimeOffset submittedAt, IEnumerable<string> events)
    {
        var record = new BuildRecord(submission, submittedAt);
        foreach (var buildEvent in events.Select(BuildEventJson.Deserialize).OfType<BuildEvent>())
        {
            record.Add(buildEvent);
        }

        return record;
    }

    public Guid BuildId => Submission.BuildId;

    public SubmitBuild Submission { get; }

    public DateTimeOffset SubmittedAt { get; }

    public BuildStatus Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    /// <summary>The <see cref="BuildFinished"/> or <see cref="BuildFailed"/> that ended the build; null while it runs.</summary>
    public BuildEvent? End
    {
        get
        {
            lock (_lock)
            {
                return _end;
            }
        }
    }

    public bool IsDone => End is not null;

    public IReadOnlyList<BuildEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    internal void MarkRunning()
    {
        lock (_lock)
        {
            if (_status == BuildStatus.Queued)
            {
                _status = BuildStatus.Running;
            }
        }
    }

    /// <summary>
    /// Appends an event; the first <see cref="BuildFinished"/> or <see cref="BuildFailed"/> ends the build, later
    /// events are dropped (false).
    /// </summary>
    internal bool Add(BuildEvent buildEvent)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        lock (_lock)
        {
            if (_end is not null)
            {
                return false;
            }

            _events.Add(buildEvent);
            switch (buildEvent)
            {
                case BuildFinished:
                    _status = BuildStatus.Succeeded;
                    _end = buildEvent;
                    break;
                case BuildFailed:
                    _status = BuildStatus.Failed;
                    _end = buildEvent;
                    break;
                default:
                    _status = BuildStatus.Running;
                    break;
            }

            foreach (var follower in _followers)
            {
                follower.Writer.TryWrite(buildEvent);
                if (_end is not null)
                {
                    follower.Writer.TryComplete();
                }
            }

            if (_end is not null)
            {
                _followers.Clear();
            }

            return true;
        }
    }

    /// <summary>The events so far, then each new one as it happens, until the build ends or <paramref name="cancellationToken"/> fires.</summary>
    public async IAsyncEnumerable<BuildEvent> FollowAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<BuildEvent>(new UnboundedChannelOptions { SingleReader = true });
        BuildEvent[] past;
        lock (_lock)
        {
            past = [.. _events];
            if (_end is null)
            {
                _followers.Add(channel);
            }
            else
            {
                channel.Writer.TryComplete();
            }
        }

        try
        {
            foreach (var buildEvent in past)
            {
                yield return buildEvent;
            }

            await foreach (var buildEvent in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return buildEvent;
            }
        }
        finally
        {
            lock (_lock)
            {
                _followers.Remove(channel);
            }
        }
    }
}
