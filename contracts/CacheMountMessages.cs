namespace Farm.Contracts;

// Farm-wide cache mounts (RUN --mount=type=cache): requests from workers to the coordinators' cache-mount grains
// (docs/architecture.md, "Cache mounts across the farm"). A cache is named by its tenant and id; its content never
// travels here, only the digest of a snapshot blob in the farm's blob store.

/// <summary>
/// A worker asks to use cache <see cref="Id"/> of <see cref="Tenant"/> for one step. For <c>locked</c> the answer
/// grants a lease (one holder across every worker, until it is released or expires) or says who holds it; for
/// <c>shared</c> and <c>private</c> it is always granted and only names the latest snapshot. Answered with
/// <see cref="CacheMountGranted"/>.
/// </summary>
public sealed record AcquireCacheMount
{
    /// <summary>The build's tenant; null without auth.</summary>
    public string? Tenant { get; init; }

    /// <summary>The cache id.</summary>
    public required string Id { get; init; }

    /// <summary><c>shared</c>, <c>private</c> or <c>locked</c>.</summary>
    public required string Sharing { get; init; }

    /// <summary>The worker asking (for the holder's name in logs and for cache affinity).</summary>
    public required string Worker { get; init; }

    /// <summary>Names this use of the cache; a <c>locked</c> lease is held by it.</summary>
    public required Guid Holder { get; init; }

    /// <summary>How long a <c>locked</c> lease lasts without a <see cref="RenewCacheMount"/>.</summary>
    public TimeSpan LeaseTime { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>The holder of a <c>locked</c> lease extends it while its step runs. Answered with <see cref="CacheMountGranted"/>.</summary>
public sealed record RenewCacheMount
{
    public string? Tenant { get; init; }

    public required string Id { get; init; }

    public required Guid Holder { get; init; }

    public TimeSpan LeaseTime { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A use of the cache ended: <see cref="Snapshot"/> (when the step succeeded and the cache was stored) becomes the
/// latest snapshot, and a <c>locked</c> lease held by <see cref="Holder"/> is released. A snapshot from a holder whose
/// lease expired and went to another is refused: its step ran without the lock. Answered with <see cref="CacheMountGranted"/>
/// (<see cref="CacheMountGranted.Granted"/> says whether the snapshot was taken).
/// </summary>
public sealed record ReleaseCacheMount
{
    public string? Tenant { get; init; }

    public required string Id { get; init; }

    public required string Sharing { get; init; }

    public required string Worker { get; init; }

    public required Guid Holder { get; init; }

    /// <summary>The cache as the step left it; null: nothing to publish (the step failed, or the cache was over the size bound).</summary>
    public CacheSnapshot? Snapshot { get; init; }

    /// <summary>
    /// The step succeeded and changed the cache, and its snapshot is still being stored: the grain counts a new
    /// generation held on <see cref="Worker"/> only, until a <see cref="PublishCacheSnapshot"/> of that generation
    /// arrives (<see cref="CacheMountGranted.Generation"/> answers which). The lease is released at once all the same.
    /// </summary>
    public bool Changed { get; init; }
}

/// <summary>
/// The snapshot of generation <see cref="Generation"/> (which <see cref="Worker"/>'s release made) is stored:
/// it becomes the latest, unless a later one already is. <see cref="Snapshot"/> null: it could not be stored (the
/// workers waiting for it stop waiting and use the latest published). Answered with <see cref="CacheMountGranted"/>.
/// </summary>
public sealed record PublishCacheSnapshot
{
    public string? Tenant { get; init; }

    public required string Id { get; init; }

    public required string Worker { get; init; }

    /// <summary>The generation the release answered with.</summary>
    public required long Generation { get; init; }

    public CacheSnapshot? Snapshot { get; init; }
}

/// <summary>The answer to <see cref="AcquireCacheMount"/>, <see cref="RenewCacheMount"/> and <see cref="ReleaseCacheMount"/>.</summary>
public sealed record CacheMountGranted
{
    /// <summary>The lease is held (or, for a release, the snapshot was taken).</summary>
    public required bool Granted { get; init; }

    /// <summary>The latest snapshot of the cache; null when none was ever published (or it was evicted).</summary>
    public CacheSnapshot? Latest { get; init; }

    /// <summary>When the lease ends unless renewed; null for <c>shared</c> and <c>private</c>.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>When not granted: the worker that holds the lease.</summary>
    public string? HeldBy { get; init; }

    /// <summary>
    /// The cache's newest generation (one more per release that changed it); for a release with
    /// <see cref="ReleaseCacheMount.Changed"/>, the generation that release made.
    /// </summary>
    public long Generation { get; init; }

    /// <summary>
    /// The worker whose directory holds <see cref="Generation"/> while its snapshot is still being stored (newer than
    /// <see cref="Latest"/>); null when the newest generation is published.
    /// </summary>
    public string? NewestOn { get; init; }
}

/// <summary>
/// A cache directory stored as gzipped tar blobs (OCI layers, so the stores and the layer reader and writer serve them)
/// in the farm's blob store: this blob, applied over <see cref="Parent"/> (and its parents, in order, from the full one
/// at the bottom); a snapshot without a parent is the whole cache.
/// </summary>
public sealed record CacheSnapshot
{
    /// <summary>The blob's digest (<c>sha256:...</c>).</summary>
    public required string Digest { get; init; }

    /// <summary>The uncompressed tar's digest, checked when the snapshot is applied.</summary>
    public required string DiffId { get; init; }

    public required string MediaType { get; init; }

    /// <summary>Bytes of the blob.</summary>
    public required long Size { get; init; }

    /// <summary>Where the blob is, as <see cref="BuildLayer.BlobStore"/> names stores.</summary>
    public required string BlobStore { get; init; }

    /// <summary>The worker that wrote it.</summary>
    public required string Worker { get; init; }

    /// <summary>When the step that wrote it ended.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>
    /// The snapshot this blob is a difference to (changed and new files, whiteouts for deleted ones); null: this blob
    /// is the whole cache.
    /// </summary>
    public CacheSnapshot? Parent { get; init; }

    /// <summary>The cache's generation this snapshot holds (0: published before generations were counted).</summary>
    public long Generation { get; init; }
}
