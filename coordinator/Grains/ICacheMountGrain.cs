using System.Collections.Immutable;
using Farm.Contracts;

namespace Farm.Coordinator.Grains;

/// <summary>
/// One grain per cache mount (tenant and id, keyed by <c>CacheMounts.Key</c>): the farm-wide side of
/// <c>RUN --mount=type=cache</c> (docs/architecture.md, "Cache mounts across the farm"). It holds the <c>locked</c>
/// lease (one holder across every worker, with an expiry so that a killed worker does not hold the cache for ever) and
/// the pointer to the latest snapshot in the blob store, which a worker that has not got it applies before the step.
/// </summary>
public interface ICacheMountGrain : IGrainWithStringKey
{
    /// <summary>A worker wants the cache for one step; <c>locked</c> gets the lease or is told who holds it.</summary>
    Task<CacheMountGranted> AcquireAsync(AcquireCacheMount request);

    /// <summary>The holder extends its lease; not granted when it expired and went to another.</summary>
    Task<CacheMountGranted> RenewAsync(RenewCacheMount request);

    /// <summary>A use ended: its snapshot (if any) becomes the latest, and the lease (if it held it) is free.</summary>
    Task<CacheMountGranted> ReleaseAsync(ReleaseCacheMount request);

    /// <summary>The snapshot of a generation a release made is stored (or could not be): see <see cref="PublishCacheSnapshot"/>.</summary>
    Task<CacheMountGranted> PublishAsync(PublishCacheSnapshot request);

    /// <summary>Drops the latest snapshot when it is <paramref name="digest"/> (evicted: the next worker starts empty).</summary>
    Task ForgetSnapshotAsync(string digest);
}

/// <summary>
/// One grain for the whole farm (key 0): when each cache mount's snapshot was last used and how big it is, so that the
/// snapshots stay within <c>Farm:Coordinator:CacheMountSnapshotBytes</c>, the least recently used out first.
/// </summary>
public interface ICacheMountIndexGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Records that the snapshot <paramref name="digest"/> of cache grain <paramref name="key"/> (<paramref name="size"/>
    /// bytes) was used now, and evicts the least recently used others while the total is over <paramref name="budget"/>.
    /// Returns the snapshots evicted, for their grains to forget.
    /// </summary>
    Task<ImmutableArray<CacheSnapshotEviction>> UsedAsync(string key, string digest, long size, long budget);
}

/// <summary>
/// A cache mount's persisted state: its latest snapshot, its <c>locked</c> lease, and its generations (fields 4 to 6,
/// added to version 1: state written before them reads as generation 0, published).
/// </summary>
[GenerateSerializer, Immutable, Alias("farm.cache-mount-state.v1")]
public sealed record CacheMountStateV1
{
    [Id(0)]
    public CacheSnapshotRecord? Latest { get; init; }

    /// <summary>The holder of the lease; empty when free.</summary>
    [Id(1)]
    public Guid Holder { get; init; }

    [Id(2)]
    public string HolderWorker { get; init; } = string.Empty;

    [Id(3)]
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>The newest generation: one more per release of a step that changed the cache.</summary>
    [Id(4)]
    public long Generation { get; init; }

    /// <summary>The worker whose directory holds <see cref="Generation"/> while its snapshot is stored; empty when published.</summary>
    [Id(5)]
    public string NewestOn { get; init; } = string.Empty;

    /// <summary>The generation <see cref="Latest"/> holds.</summary>
    [Id(6)]
    public long PublishedGeneration { get; init; }
}

/// <summary>A snapshot as the grain keeps it (its own type, so a change of the wire contract does not break state).</summary>
[GenerateSerializer, Immutable, Alias("farm.cache-snapshot-record.v1")]
public sealed record CacheSnapshotRecord
{
    [Id(0)]
    public string Digest { get; init; } = string.Empty;

    [Id(1)]
    public string DiffId { get; init; } = string.Empty;

    [Id(2)]
    public string MediaType { get; init; } = string.Empty;

    [Id(3)]
    public long Size { get; init; }

    [Id(4)]
    public string BlobStore { get; init; } = string.Empty;

    [Id(5)]
    public string Worker { get; init; } = string.Empty;

    [Id(6)]
    public DateTimeOffset At { get; init; }

    /// <summary>The snapshot this one is a delta over; null for a whole one (and for every snapshot written before deltas).</summary>
    [Id(7)]
    public CacheSnapshotRecord? Parent { get; init; }

    [Id(8)]
    public long Generation { get; init; }

    /// <summary>Bytes of every blob of the chain, this one and its parents': what the snapshot costs the store.</summary>
    public long ChainSize => Size + (Parent?.ChainSize ?? 0);

    public static CacheSnapshotRecord From(CacheSnapshot s) => new()
    {
        Digest = s.Digest,
        DiffId = s.DiffId,
        MediaType = s.MediaType,
        Size = s.Size,
        BlobStore = s.BlobStore,
        Worker = s.Worker,
        At = s.At,
        Parent = s.Parent is null ? null : From(s.Parent),
        Generation = s.Generation,
    };

    public CacheSnapshot ToContract() => new()
    {
        Digest = Digest,
        DiffId = DiffId,
        MediaType = MediaType,
        Size = Size,
        BlobStore = BlobStore,
        Worker = Worker,
        At = At,
        Parent = Parent?.ToContract(),
        Generation = Generation,
    };
}

/// <summary>The snapshot index's persisted state. Version 1.</summary>
[GenerateSerializer, Immutable, Alias("farm.cache-mount-index.v1")]
public sealed record CacheMountIndexStateV1
{
    [Id(0)]
    public ImmutableDictionary<string, CacheSnapshotUse> Snapshots { get; init; } = ImmutableDictionary<string, CacheSnapshotUse>.Empty;
}

/// <summary>One cache's snapshot in the index.</summary>
[GenerateSerializer, Immutable, Alias("farm.cache-snapshot-use.v1")]
public sealed record CacheSnapshotUse
{
    [Id(0)]
    public string Digest { get; init; } = string.Empty;

    [Id(1)]
    public long Size { get; init; }

    [Id(2)]
    public DateTimeOffset LastUsed { get; init; }
}

/// <summary>A snapshot the index evicted: the cache grain's key and the snapshot's digest.</summary>
[GenerateSerializer, Immutable, Alias("farm.cache-snapshot-eviction.v1")]
public sealed record CacheSnapshotEviction
{
    [Id(0)]
    public string Key { get; init; } = string.Empty;

    [Id(1)]
    public string Digest { get; init; } = string.Empty;
}
