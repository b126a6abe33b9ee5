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
/// durable state of every build of the farm is its <see cref="Grains.IBuildGrain"/>'s (<see cref="BuildService.GetAsync(Guid, CancellationToken)"/>).
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

    /// <summary>Forgets a record this silo accepted but must not keep (an id another tenant's build holds).</summary>
    internal void Remove(Guid buildId) => _builds.TryRemove(buildId, out _);

    public bool TryGet(Guid buildId, out BuildRecord record) => _builds.TryGetValue(buildId, out record!);

    /// <exception cref="BuildNotFoundException">The id is unknown (FARM4210).</exception>
    public BuildRecord Get(Guid buildId) =>
        _builds.TryGetValue(buildId, out var record) ? record : throw new BuildNotFoundException(buildId);

    public IReadOnlyList<BuildRecord> All => [.. _builds.Values.OrderBy(b => b.SubmittedAt)];
}

/// <summary>
/// An event with its number in its build: 1 for the first, then one more for each. A follower that saw event
/// <c>n</c> asks for the events after <c>n</c> (<c>GET /builds/{id}/events?after=n</c>) and gets each one once.
/// </summary>
public readonly record struct SequencedBuildEvent(long Seq, BuildEvent Event);

/// <summary>One build: its status and every <see cref="BuildEvent"/> so far, numbered; followers get the rest as they happen.</summary>
public sealed class BuildRecord
{
    private readonly Lock _lock = new();
    private readonly List<SequencedBuildEvent> _events = [];
    private readonly List<Channel<SequencedBuildEvent>> _followers = [];
    private BuildStatus _status = BuildStatus.Queued;
    private BuildEvent? _end;
    private long _seq;

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
        foreach (var line in events)
        {
            record.AddLine(line);
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
                return [.. _events.Select(e => e.Event)];
            }
        }
    }

    /// <summary>The events numbered above <paramref name="after"/>, oldest first.</summary>
    public IReadOnlyList<SequencedBuildEvent> EventsAfter(long after)
    {
        lock (_lock)
        {
            return [.. _events.Where(e => e.Seq > after)];
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
    /// Numbers the events this record appends from here on after <paramref name="last"/>: a resumed run continues the
    /// numbering of the shared event stream, which may have got further than the grain's persisted tail.
    /// </summary>
    internal void ContinueAfter(long last)
    {
        lock (_lock)
        {
            _seq = last;
        }
    }

    /// <summary>
    /// Appends an event; the first <see cref="BuildFinished"/> or <see cref="BuildFailed"/> ends the build, later
    /// events are dropped (false).
    /// </summary>
    internal bool Add(BuildEvent buildEvent) => Append(buildEvent) > 0;

    /// <summary>Like <see cref="Add"/>, and returns the event's number; 0 when it was dropped.</summary>
    internal long Append(BuildEvent buildEvent) => Append(buildEvent, seq: null);

    /// <summary>Appends a persisted <see cref="BuildEventJson"/> line, keeping its number; a type this version does not know is skipped.</summary>
    internal void AddLine(string line)
    {
        if (BuildEventJson.Deserialize(line) is { } buildEvent)
        {
            Append(buildEvent, BuildEventJson.Seq(line));
        }
    }

    private long Append(BuildEvent buildEvent, long? seq)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        lock (_lock)
        {
            if (_end is not null)
            {
                return 0;
            }

            // A persisted line keeps its number (lines written before events were numbered count on from the last).
            _seq = seq is { } given && given > _seq ? given : _seq + 1;
            var entry = new SequencedBuildEvent(_seq, buildEvent);
            _events.Add(entry);
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
                follower.Writer.TryWrite(entry);
                if (_end is not null)
                {
                    follower.Writer.TryComplete();
                }
            }

            if (_end is not null)
            {
                _followers.Clear();
            }

            return _seq;
        }
    }

    /// <summary>
    /// The events numbered above <paramref name="after"/> so far, then each new one as it happens, until the build
    /// ends or <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async IAsyncEnumerable<SequencedBuildEvent> FollowAsync(long after, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<SequencedBuildEvent>(new UnboundedChannelOptions { SingleReader = true });
        SequencedBuildEvent[] past;
        lock (_lock)
        {
            past = [.. _events.Where(e => e.Seq > after)];
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
            foreach (var entry in past)
            {
                yield return entry;
            }

            await foreach (var entry in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return entry;
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
