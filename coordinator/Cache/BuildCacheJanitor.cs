using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Images;

namespace Farm.Coordinator.Cache;

/// <summary>What <c>GET /system/df</c> answers (<c>farm system df</c>).</summary>
/// <param name="CacheStore">Where the cache's layers are: the local image store's layout, or <c>registry://HOST/REPO</c>.</param>
/// <param name="Images">The local image store's images (the local farm only; null for a shared farm, whose images are in registries).</param>
/// <param name="BuildCache">The action cache and the layers its entries refer to.</param>
public sealed record SystemDiskUsage(string CacheStore, ImageUsage? Images, BuildCacheUsage BuildCache);

/// <summary>The local image store's images.</summary>
/// <param name="Count">Distinct images (manifests), however many names each has.</param>
/// <param name="Bytes">The blobs they need (manifests, configs, layers), each counted once.</param>
public sealed record ImageUsage(int Count, long Bytes);

/// <summary>The build cache.</summary>
/// <param name="Entries">Action cache entries (cache key to layer).</param>
/// <param name="Layers">Distinct layer blobs the entries refer to.</param>
/// <param name="Bytes">Their size, each counted once.</param>
/// <param name="Reclaimable">What <c>farm system prune</c> would free: the local farm deletes the layers no image needs;
/// a shared farm removes its entries and their cache manifests, and the registry's garbage collection frees the layers.</param>
/// <param name="OldestUse">The least recent use of an entry (null when the cache is empty).</param>
public sealed record BuildCacheUsage(int Entries, int Layers, long Bytes, long Reclaimable, DateTimeOffset? OldestUse);

/// <summary>What <c>POST /system/prune</c> is asked: both null removes every entry (docker's <c>builder prune -a</c>).</summary>
/// <param name="Until">Only entries not used within this long are removed.</param>
/// <param name="KeepStorage">Entries are removed, least recently used first, only until their layers take at most this many bytes.</param>
public sealed record BuildCachePrune(TimeSpan? Until, long? KeepStorage);

/// <summary>What a prune did.</summary>
/// <param name="EntriesRemoved">Action cache entries removed.</param>
/// <param name="LayersRemoved">Layers no remaining entry refers to any more.</param>
/// <param name="ReclaimedBytes">Bytes deleted from the local blob store (0 on a shared farm, which deletes no blob).</param>
/// <param name="UnreferencedBytes">The size of the layers no remaining entry refers to (on a shared farm, what the registry's garbage collection frees once their cache manifests are deleted).</param>
/// <param name="BlobsDeleted">Whether this farm deleted blobs (the local farm) or left them (a registry cache store).</param>
/// <param name="EntriesLeft">Entries still in the cache.</param>
/// <param name="BytesLeft">The size of the layers they refer to.</param>
/// <param name="ReferencesKept">Removed entries whose cache manifest the registry did not delete (a shared farm; see <see cref="ReferencingActionCache"/>): their layers survive its garbage collection.</param>
/// <param name="Warning">Why they were kept (FARM4290, FARM4291), or null.</param>
public sealed record BuildCachePruned(int EntriesRemoved, int LayersRemoved, long ReclaimedBytes, long UnreferencedBytes, bool BlobsDeleted, int EntriesLeft, long BytesLeft, int ReferencesKept = 0, string? Warning = null);

/// <summary>
/// The build cache's lifecycle: how much it holds (<see cref="UsageAsync"/>) and eviction, least recently used first
/// (<see cref="PruneAsync"/>), for <c>farm system df|prune</c> and the local farm's size cap
/// (<c>Farm:Builds:CacheMaxBytes</c>).
/// </summary>
/// <remarks>
/// <para>Entries go first, then the blobs: an entry is removed before its layer, so no lookup meets an entry whose
/// blob it cannot find except the moment a running build already held it (<see cref="VerifyingActionCache"/> turns
/// that into a miss for the next build).</para>
/// <para>On the local farm the cache store is the image store: a layer an image needs is never deleted, nor one a
/// remaining entry refers to. On a shared farm the cache store is a registry repository, whose blobs Farm never deletes:
/// <paramref name="cache"/> (a <see cref="ReferencingActionCache"/>) deletes a removed entry's cache manifest, and the
/// registry's garbage collection, the operator's, frees the layers no manifest refers to any more
/// (docs/configuration.md, "Build cache").</para>
/// </remarks>
/// <param name="inventory">The action cache's entries.</param>
/// <param name="cache">The same action cache, to remove entries.</param>
/// <param name="cacheStore">The cache store's address, as <c>/store</c> answers.</param>
/// <param name="localImages">The local image store when it is the cache store (the local farm), else null.</param>
/// <param name="forget">Called for each removed key, so a second memory of the layer (the layer grain's) forgets it too.</param>
/// <param name="time">The clock of <c>until</c>.</param>
/// <param name="references">A registry cache store's manifests, brought in step with the entries after each prune.</param>
public sealed class BuildCacheJanitor(
    IActionCacheInventory inventory,
    IActionCache cache,
    string cacheStore,
    Func<CancellationToken, Task<LocalImageStore>>? localImages,
    Func<string, CancellationToken, Task>? forget = null,
    TimeProvider? time = null,
    ReferencingActionCache? references = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The store's images (local farm) and the build cache's entries and bytes.</summary>
    public async Task<SystemDiskUsage> UsageAsync(CancellationToken cancellationToken)
    {
        var records = await ListAsync(cancellationToken).ConfigureAwait(false);
        var layers = DistinctLayers(records);
        if (localImages is null)
        {
            var bytes = layers.Values.Sum();
            return new SystemDiskUsage(cacheStore, null, new BuildCacheUsage(records.Count, layers.Count, bytes, bytes, Oldest(records)));
        }

        var store = await localImages(cancellationToken).ConfigureAwait(false);
        var imageBlobs = await store.ImageBlobsAsync(cancellationToken).ConfigureAwait(false);
        long imageBytes = 0;
        foreach (var digest in imageBlobs)
        {
            imageBytes += await store.Layout.StatAsync(digest, cancellationToken).ConfigureAwait(false) ?? 0;
        }

        var images = (await store.ListAsync(cancellationToken).ConfigureAwait(false)).Select(i => i.ManifestDigest).Distinct().Count();
        long cacheBytes = 0, reclaimable = 0;
        var present = 0;
        foreach (var (digest, size) in layers)
        {
            // Only what is on disk counts: an entry whose blob is gone is a miss already.
            if (await store.Layout.StatAsync(digest, cancellationToken).ConfigureAwait(false) is not { } onDisk)
            {
                continue;
            }

            present++;
            cacheBytes += onDisk;
            if (!imageBlobs.Contains(digest))
            {
                reclaimable += onDisk;
            }
        }

        return new SystemDiskUsage(cacheStore, new ImageUsage(images, imageBytes), new BuildCacheUsage(records.Count, present, cacheBytes, reclaimable, Oldest(records)));
    }

    /// <summary>Removes entries as <paramref name="request"/> says, least recently used first, then (local farm) the layers nothing needs any more.</summary>
    public async Task<BuildCachePruned> PruneAsync(BuildCachePrune request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var records = await ListAsync(cancellationToken).ConfigureAwait(false);
        var sizes = DistinctLayers(records);
        var uses = new Dictionary<Digest, int>();
        foreach (var record in records)
        {
            if (LayerOf(record) is { } d)
            {
                uses[d] = uses.GetValueOrDefault(d) + 1;
            }
        }

        var total = sizes.Values.Sum();
        var cutoff = request.Until is { } until ? _time.GetUtcNow() - until : (DateTimeOffset?)null;
        var removed = 0;
        var kept = 0;
        string? warning = null;
        var freedLayers = new List<Digest>();
        long unreferenced = 0;
        foreach (var record in records.OrderBy(r => r.LastUsed))
        {
            if (cutoff is { } c && record.LastUsed >= c)
            {
                // Ordered by last use: every later entry is as recent.
                break;
            }

            if (request.KeepStorage is { } keep && total <= keep)
            {
                break;
            }

            try
            {
                await cache.RemoveAsync(record.Key, cancellationToken).ConfigureAwait(false);
            }
            catch (FarmException e) when (e is CacheDeletesRefusedException or CacheReferenceFailedException)
            {
                // The entry is gone; only its manifest stays. Reported, not a failed prune.
                kept++;
                warning ??= e.Message;
            }

            if (forget is not null)
            {
                await forget(record.Key, cancellationToken).ConfigureAwait(false);
            }

            removed++;
            if (LayerOf(record) is { } digest && --uses[digest] == 0)
            {
                freedLayers.Add(digest);
                total -= sizes[digest];
                unreferenced += sizes[digest];
            }
        }

        if (references is not null)
        {
            await references.ReconcileAsync(ListAsync, cancellationToken).ConfigureAwait(false);
        }

        long reclaimed = 0;
        if (localImages is not null && freedLayers.Count > 0)
        {
            var store = await localImages(cancellationToken).ConfigureAwait(false);
            var keep = uses.Where(u => u.Value > 0).Select(u => u.Key).ToHashSet();
            reclaimed = await store.DeleteUnreferencedAsync(freedLayers, keep, cancellationToken).ConfigureAwait(false);
        }

        return new BuildCachePruned(removed, freedLayers.Count, reclaimed, unreferenced, localImages is not null, records.Count - removed, total, kept, warning);
    }

    private async Task<List<ActionCacheRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var records = new List<ActionCacheRecord>();
        await foreach (var record in inventory.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            records.Add(record);
        }

        return records;
    }

    private static Digest? LayerOf(ActionCacheRecord record) =>
        record.Entry.Layer is { } layer && Digest.TryParse(layer.Digest, out var digest) ? digest : null;

    private static Dictionary<Digest, long> DistinctLayers(IEnumerable<ActionCacheRecord> records)
    {
        var sizes = new Dictionary<Digest, long>();
        foreach (var record in records)
        {
            if (LayerOf(record) is { } digest)
            {
                sizes[digest] = record.Entry.Layer!.Size;
            }
        }

        return sizes;
    }

    private static DateTimeOffset? Oldest(List<ActionCacheRecord> records) => records.Count == 0 ? null : records.Min(r => r.LastUsed);
}
