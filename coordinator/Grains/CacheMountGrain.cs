using System.Collections.Immutable;
using Farm.Contracts;
using Farm.Coordinator.Hosting;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Grains;

/// <summary>
/// The farm-wide state of one cache mount: the <c>locked</c> lease and the latest snapshot (docs/architecture.md,
/// "Cache mounts across the farm"). State is written on every change of holder or snapshot (Redis in a cluster), so a
/// silo that dies does not hand a held lease to a second worker from empty state. A lease ends when released or when
/// its holder stops renewing it (a killed worker): after <see cref="AcquireCacheMount.LeaseTime"/> the next worker
/// takes it and starts from the latest published snapshot; what the dead holder wrote is lost, never published.
/// A lease is released when its step ends, before the step's snapshot is stored: the grain then counts a new
/// generation held on that worker only (<see cref="CacheMountStateV1.NewestOn"/>) until the worker publishes it, so
/// that the same worker goes on from its own directory at once and another worker knows to wait for the snapshot.
/// </summary>
/// <remarks>Grain code must not use ConfigureAwait(false): continuations have to come back to the grain's scheduler.</remarks>
public sealed partial class CacheMountGrain(
    [PersistentState("cache-mount", CoordinatorHosting.LayerStorage)] IPersistentState<CacheMountStateV1> state,
    ILogger<CacheMountGrain> logger,
    TimeProvider? time = null) : Grain, ICacheMountGrain
{
    /// <summary>The shortest and the longest lease a worker may ask for.</summary>
    public static readonly TimeSpan MinLease = TimeSpan.FromSeconds(1), MaxLease = TimeSpan.FromMinutes(10);

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    private string Key => this.GetPrimaryKeyString();

    public async Task<CacheMountGranted> AcquireAsync(AcquireCacheMount request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var current = state.State;
        if (request.Sharing != "locked")
        {
            return Answer(current, granted: true);
        }

        var now = _time.GetUtcNow();
        if (current.Holder != Guid.Empty && current.Holder != request.Holder && current.ExpiresAt > now)
        {
            return Answer(current, granted: false) with { HeldBy = current.HolderWorker };
        }

        if (current.Holder != Guid.Empty && current.Holder != request.Holder)
        {
            LogLeaseExpired(logger, Key, current.HolderWorker, request.Worker);
        }

        var expires = now + Clamp(request.LeaseTime);
        state.State = current with { Holder = request.Holder, HolderWorker = request.Worker, ExpiresAt = expires };
        await state.WriteStateAsync();
        return Answer(state.State, granted: true) with { ExpiresAt = expires };
    }

    public async Task<CacheMountGranted> RenewAsync(RenewCacheMount request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var current = state.State;
        if (current.Holder != request.Holder)
        {
            return new CacheMountGranted { Granted = false, Latest = current.Latest?.ToContract(), HeldBy = current.HolderWorker };
        }

        var expires = _time.GetUtcNow() + Clamp(request.LeaseTime);
        state.State = current with { ExpiresAt = expires };
        await state.WriteStateAsync();
        return new CacheMountGranted { Granted = true, Latest = current.Latest?.ToContract(), ExpiresAt = expires };
    }

    public async Task<CacheMountGranted> ReleaseAsync(ReleaseCacheMount request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var current = state.State;
        var locked = request.Sharing == "locked";
        // A locked step whose lease went to another ran without the lock for a while: its cache is not believed. (Still
        // its holder after expiry, with no one else in between: nobody used the cache meanwhile, so it stands.)
        var accepted = !locked || current.Holder == request.Holder;
        if (locked && !accepted)
        {
            LogLostLease(logger, Key, request.Worker, current.HolderWorker);
        }

        var next = current;
        if (locked && current.Holder == request.Holder)
        {
            next = next with { Holder = Guid.Empty, HolderWorker = string.Empty, ExpiresAt = default };
        }

        if (accepted && request.Snapshot is { } snapshot)
        {
            // Published with the release (a worker from before generations): the newest, and published.
            var generation = next.Generation + 1;
            next = next with { Latest = CacheSnapshotRecord.From(snapshot) with { Generation = generation }, Generation = generation, PublishedGeneration = generation, NewestOn = string.Empty };
        }
        else if (accepted && request.Changed)
        {
            next = next with { Generation = next.Generation + 1, NewestOn = request.Worker };
        }

        if (next != current)
        {
            state.State = next;
            await state.WriteStateAsync();
        }

        return Answer(next, granted: accepted && (request.Snapshot is not null || request.Changed));
    }

    public async Task<CacheMountGranted> PublishAsync(PublishCacheSnapshot request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var current = state.State;
        var next = current;
        // A snapshot older than the latest published is of no use; one between it and the newest still is (the newest
        // is a delta over it, on its way).
        var taken = request.Snapshot is not null && request.Generation > current.PublishedGeneration && request.Generation <= current.Generation;
        if (taken)
        {
            next = next with { Latest = CacheSnapshotRecord.From(request.Snapshot!) with { Generation = request.Generation }, PublishedGeneration = request.Generation };
        }

        if (request.Generation == current.Generation && current.NewestOn == request.Worker)
        {
            if (!taken)
            {
                LogNewestLost(logger, Key, request.Worker, request.Generation, current.PublishedGeneration);
            }

            next = next with { NewestOn = string.Empty };
        }

        if (next != current)
        {
            state.State = next;
            await state.WriteStateAsync();
        }

        return Answer(next, granted: taken);
    }

    private static CacheMountGranted Answer(CacheMountStateV1 current, bool granted) => new()
    {
        Granted = granted,
        Latest = current.Latest?.ToContract(),
        Generation = current.Generation,
        NewestOn = current.NewestOn.Length == 0 ? null : current.NewestOn,
    };

    public async Task ForgetSnapshotAsync(string digest)
    {
        if (state.State.Latest?.Digest == digest)
        {
            state.State = state.State with { Latest = null, PublishedGeneration = state.State.Generation, NewestOn = string.Empty };
            await state.WriteStateAsync();
        }
    }

    private static TimeSpan Clamp(TimeSpan lease) => lease < MinLease ? MinLease : lease > MaxLease ? MaxLease : lease;

    [LoggerMessage(Level = LogLevel.Warning, Message = "The lease of cache mount {Key} held by {Holder} expired without a release (its worker died or lost the coordinators); {Worker} takes it, from the latest published snapshot")]
    private static partial void LogLeaseExpired(ILogger logger, string key, string holder, string worker);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache mount {Key}: {Worker} could not store the snapshot of generation {Generation}; the latest published one (generation {Published}) stands")]
    private static partial void LogNewestLost(ILogger logger, string key, string worker, long generation, long published);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache mount {Key}: {Worker} released a lease that had expired and gone to {Holder}; its snapshot is not taken")]
    private static partial void LogLostLease(ILogger logger, string key, string worker, string holder);
}

/// <summary>
/// The farm's index of cache mount snapshots, least recently used first out when their total passes the budget. Its
/// state is small (a key, a digest, a size and a time per cache) and written on every use.
/// </summary>
public sealed class CacheMountIndexGrain(
    [PersistentState("cache-mount-index", CoordinatorHosting.LayerStorage)] IPersistentState<CacheMountIndexStateV1> state,
    TimeProvider? time = null) : Grain, ICacheMountIndexGrain
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public async Task<ImmutableArray<CacheSnapshotEviction>> UsedAsync(string key, string digest, long size, long budget)
    {
        var snapshots = state.State.Snapshots.SetItem(key, new CacheSnapshotUse { Digest = digest, Size = size, LastUsed = _time.GetUtcNow() });
        var total = snapshots.Values.Sum(s => s.Size);
        var evicted = ImmutableArray.CreateBuilder<CacheSnapshotEviction>();
        foreach (var (oldKey, use) in snapshots.Where(s => s.Key != key).OrderBy(s => s.Value.LastUsed).ToList())
        {
            if (total <= budget)
            {
                break;
            }

            total -= use.Size;
            snapshots = snapshots.Remove(oldKey);
            evicted.Add(new CacheSnapshotEviction { Key = oldKey, Digest = use.Digest });
        }

        state.State = state.State with { Snapshots = snapshots };
        await state.WriteStateAsync();
        return evicted.ToImmutable();
    }
}
