using Farm.Contracts;
using Farm.Oci;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Cache;

/// <summary>
/// Keeps the layers of a registry cache store referenced (docs/architecture.md, "Storage"): beside every action cache
/// entry with a layer it pushes a small OCI manifest naming that layer, tagged by the entry's key, and deletes it when
/// the entry goes. Workers upload layers with no manifest, and a registry's garbage collection deletes every blob no
/// manifest refers to: without these manifests one collection empties the farm's whole cache.
/// </summary>
/// <remarks>
/// <para>The manifest is an artifact (image-spec 1.1, "Guidelines for Artifact Usage"): <c>artifactType</c>
/// <see cref="ArtifactType"/>, the empty config (<see cref="MediaTypes.OciEmpty"/>, the two bytes <c>{}</c>), the layer
/// as its one layer, and the cache key as an annotation, so two entries whose steps made the same layer get different
/// manifests and deleting one never untags the other. It carries no build argument, credential or command, only the
/// key (a hash) and the layer's descriptor. https://github.com/opencontainers/image-spec/blob/main/manifest.md</para>
/// <para>One manifest per entry: pushing it is one PUT per build miss (its bytes are the same each time, so a rewrite of
/// the entry is an idempotent PUT), and evicting an entry is a HEAD and a DELETE of exactly its manifest. One manifest
/// listing many layers would save PUTs but need a read-modify-write shared by every coordinator, and an eviction would
/// rewrite it.</para>
/// <para>The entry is written first, its manifest second: an entry whose manifest push failed only loses its layer to
/// a collection (a miss later), while a manifest without an entry would keep a layer nothing can evict.</para>
/// </remarks>
public sealed partial class ReferencingActionCache(IActionCache inner, RegistryBlobStore store, ILogger<ReferencingActionCache> logger) : IActionCache
{
    /// <summary>The <c>artifactType</c> of a cache manifest.</summary>
    public const string ArtifactType = "application/vnd.farm.cache.v1";

    /// <summary>The annotation holding the entry's cache key.</summary>
    public const string KeyAnnotation = "vnd.farm.cache.key";

    /// <summary>A cache manifest's tag: this and the key's 64 hex digits (a valid tag: <c>[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}</c>).</summary>
    public const string TagPrefix = "farm-ac-";

    private static readonly byte[] _emptyConfig = "{}"u8.ToArray();
    private static readonly Descriptor _emptyConfigDescriptor = new() { MediaType = MediaTypes.OciEmpty, Digest = Digest.Sha256(_emptyConfig), Size = _emptyConfig.Length };

    private readonly IActionCache _inner = inner ?? throw new ArgumentNullException(nameof(inner));
    private readonly RegistryBlobStore _store = store ?? throw new ArgumentNullException(nameof(store));
    private readonly ILogger _logger = logger ?? throw new ArgumentNullException(nameof(logger));
    private Task? _configPushed;

    /// <summary>The tag of <paramref name="key"/>'s cache manifest.</summary>
    /// <exception cref="InvalidCacheKeyException">The key is not <c>sha256:</c> and 64 hex digits.</exception>
    public static string TagOf(string key) => TagPrefix + InvalidCacheKeyException.Check(key);

    /// <summary>The cache manifest of an entry: the same bytes for the same key and layer.</summary>
    public static ImageManifest ManifestOf(string key, LayerRef layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        InvalidCacheKeyException.Check(key);
        return new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            ArtifactType = ArtifactType,
            Config = _emptyConfigDescriptor,
            Layers = [new Descriptor { MediaType = layer.MediaType, Digest = Digest.Parse(layer.Digest), Size = layer.Size }],
            Annotations = new Dictionary<string, string> { [KeyAnnotation] = key },
        };
    }

    public Task<ActionCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken) => _inner.TryGetAsync(key, cancellationToken);

    /// <summary>Writes the entry, then its manifest; a failed manifest push is logged (FARM4291), the entry stays.</summary>
    public async Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await _inner.PutAsync(key, entry, cancellationToken).ConfigureAwait(false);
        if (entry.Layer is not { } layer)
        {
            // A step that changed nothing has no blob to keep.
            return;
        }

        try
        {
            await ReferenceAsync(key, layer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            LogReferenceFailed(_logger, new CacheReferenceFailedException(_store.ToString(), TagOf(key), "push", e), key);
        }
    }

    /// <summary>
    /// Removes the entry, then deletes its manifest.
    /// </summary>
    /// <exception cref="CacheDeletesRefusedException">The registry does not allow deletes: the entry is gone, its manifest stays (FARM4290).</exception>
    /// <exception cref="CacheReferenceFailedException">The registry failed to delete it (FARM4291).</exception>
    public async Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        await _inner.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        await DeleteManifestAsync(TagOf(key), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Brings the cache manifests in step with the entries, for what the write path cannot see: an entry whose manifest
    /// push failed or that predates cache manifests gets one; a manifest whose entry went without it (expired, or Redis
    /// lost its data) is deleted, else its layer would outlive every prune. Best effort: failures are logged, and a
    /// registry without deletes keeps such manifests.
    /// </summary>
    /// <param name="entries">Lists the entries; called after the tags are listed (see the remark inside).</param>
    /// <param name="cancellationToken">Stops it.</param>
    /// <returns>Manifests pushed and deleted.</returns>
    public async Task<(int Pushed, int Deleted)> ReconcileAsync(Func<CancellationToken, Task<List<ActionCacheRecord>>> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        HashSet<string> tags;
        try
        {
            tags = [.. (await _store.Client.ListTagsAsync(_store.Repository, cancellationToken).ConfigureAwait(false)).Where(t => t.StartsWith(TagPrefix, StringComparison.Ordinal))];
        }
        catch (FarmException e)
        {
            // A repository nothing was pushed to yet has no tag list either.
            LogReconcileFailed(_logger, e);
            return (0, 0);
        }

        // Tags first, entries second: a manifest is pushed only after its entry is written, so a tag whose entry the
        // later listing lacks lost its entry, never one being written now.
        var wanted = (await entries(cancellationToken).ConfigureAwait(false)).Where(r => r.Entry.Layer is not null).ToDictionary(r => TagOf(r.Key));
        var (pushed, deleted, failed) = (0, 0, 0);
        Exception? first = null;
        foreach (var (tag, record) in wanted.Where(w => !tags.Contains(w.Key)))
        {
            try
            {
                await ReferenceAsync(record.Key, record.Entry.Layer!, cancellationToken).ConfigureAwait(false);
                pushed++;
            }
            catch (FarmException e)
            {
                // Most often a stale entry whose blob is gone (MANIFEST_BLOB_UNKNOWN): its next hit is a miss that drops it.
                failed++;
                first ??= new CacheReferenceFailedException(_store.ToString(), tag, "push", e);
            }
        }

        foreach (var tag in tags.Where(t => !wanted.ContainsKey(t)))
        {
            try
            {
                await DeleteManifestAsync(tag, cancellationToken).ConfigureAwait(false);
                deleted++;
            }
            catch (FarmException e) when (e is CacheDeletesRefusedException or CacheReferenceFailedException)
            {
                failed++;
                first ??= e;
            }
        }

        if (pushed + deleted + failed > 0)
        {
            LogReconciled(_logger, first, pushed, deleted, failed);
        }

        return (pushed, deleted);
    }

    /// <summary>Deletes the manifest tagged <paramref name="tag"/>, when there is one.</summary>
    private async Task DeleteManifestAsync(string tag, CancellationToken cancellationToken)
    {
        ManifestDeletion deletion;
        try
        {
            var manifest = await _store.Client.HeadManifestAsync(_store.Repository, tag, cancellationToken).ConfigureAwait(false);
            if (manifest is null)
            {
                return;
            }

            deletion = await _store.Client.DeleteManifestAsync(_store.Repository, manifest.Digest, cancellationToken).ConfigureAwait(false);
        }
        catch (FarmException e)
        {
            throw new CacheReferenceFailedException(_store.ToString(), tag, "delete", e);
        }

        if (deletion == ManifestDeletion.Refused)
        {
            throw new CacheDeletesRefusedException(_store.ToString());
        }
    }

    private async Task ReferenceAsync(string key, LayerRef layer, CancellationToken cancellationToken)
    {
        // The empty config must be in the repository before a manifest names it; pushed once per process, again after
        // a failure (a garbage collection after the last manifest went may have taken it).
        var config = Volatile.Read(ref _configPushed);
        if (config is null || config.IsFaulted || config.IsCanceled)
        {
            config = PushEmptyConfigAsync();
            Volatile.Write(ref _configPushed, config);
        }

        await config.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _store.Client.PushManifestAsync(_store.Repository, TagOf(key), ManifestOf(key, layer), cancellationToken).ConfigureAwait(false);
        }
        catch (FarmException)
        {
            Volatile.Write(ref _configPushed, null);
            throw;
        }
    }

    private async Task PushEmptyConfigAsync()
    {
        using var content = new MemoryStream(_emptyConfig, writable: false);
        await _store.PutAsync(_emptyConfigDescriptor, content, CancellationToken.None).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The cache manifests could not be listed; they are brought in step with the entries at the next prune")]
    private static partial void LogReconcileFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache manifests brought in step with the action cache: {Pushed} pushed for entries without one, {Deleted} deleted without an entry, {Failed} failed (the first failure attached)")]
    private static partial void LogReconciled(ILogger logger, Exception? exception, int pushed, int deleted, int failed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The cache manifest of {CacheKey} was not pushed; a garbage collection of the registry would drop its layer")]
    private static partial void LogReferenceFailed(ILogger logger, Exception exception, string cacheKey);
}

/// <summary>FARM4290: the cache store's registry does not allow deletes, so an evicted entry's layer stays referenced.</summary>
public sealed class CacheDeletesRefusedException(string store)
    : FarmException(FarmErrorCodes.CacheDeletesRefused, $"The registry of the cache store {store} refuses deletes, so the cache manifests of the evicted entries stay and its garbage collection keeps their layers. The entries themselves are gone. Enable deletes in the registry (distribution: storage.delete.enabled: true) and prune again to free them.");

/// <summary>FARM4291: pushing or deleting a cache manifest failed.</summary>
public sealed class CacheReferenceFailedException(string store, string tag, string operation, Exception innerException)
    : FarmException(FarmErrorCodes.CacheReferenceFailed, $"The {operation} of cache manifest {store}:{tag} failed: {innerException.Message}", innerException);
