using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Farm.Contracts;

namespace Farm.Coordinator.Builds;

/// <summary>Where a submitted build is.</summary>
public enum BuildStatus
{
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// <summary>The builds this coordinator accepted, by id: in memory, forgotten when it restarts.</summary>
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

    /// <summary>Appends an event; the first <see cref="BuildFinished"/> or <see cref="BuildFailed"/> ends the build, later events are dropped.</summary>
    internal void Add(BuildEvent buildEvent)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        lock (_lock)
        {
            if (_end is not null)
            {
                return;
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
