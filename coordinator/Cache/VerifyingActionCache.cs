using Farm.Oci;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Cache;

/// <summary>
/// The policy around an action-cache adapter (docs/architecture.md, "Failure model"): a hit counts only if its blob is still in
/// the blob store, and the cache can only ever cause a miss, never a failed build or a wrong hit.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>A hit whose blob is gone (garbage-collected, a different store) is a miss, and the entry is removed.</item>
/// <item>A hit whose blob has another size than recorded is a miss too (and removed): the entry lies.</item>
/// <item>A failed or unreadable read is a miss (logged); an unreadable entry is removed so it gets rewritten.</item>
/// <item>A failed write is logged and ignored: the next build misses and rebuilds.</item>
/// </list>
/// Cancellation is never swallowed.
/// </remarks>
public sealed partial class VerifyingActionCache : IActionCache
{
    private readonly IActionCache _inner;
    private readonly IBlobStore _blobs;
    private readonly ILogger _logger;

    public VerifyingActionCache(IActionCache inner, IBlobStore blobs, ILogger<VerifyingActionCache> logger)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(blobs);
        ArgumentNullException.ThrowIfNull(logger);
        _inner = inner;
        _blobs = blobs;
        _logger = logger;
    }

    public async Task<ActionCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken)
    {
        ActionCacheEntry? entry;
        try
        {
            entry = await _inner.TryGetAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (ActionCacheCorruptEntryException e)
        {
            LogCorrupt(key, e);
            await TryRemoveAsync(key, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException and not InvalidCacheKeyException)
        {
            LogReadFailed(key, e);
            return null;
        }

        if (entry?.Layer is not { } layer)
        {
            // A miss, or a step that made no layer: nothing in the store to check.
            return entry;
        }

        long? size;
        try
        {
            size = await _blobs.StatAsync(Digest.Parse(layer.Digest), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The store cannot say: not proof the entry is stale, so keep it, but do not trust it now.
            LogStatFailed(key, layer.Digest, e);
            return null;
        }

        if (size == layer.Size)
        {
            return entry;
        }

        LogStale(key, layer.Digest, size);
        await TryRemoveAsync(key, cancellationToken).ConfigureAwait(false);
        return null;
    }

    public async Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken)
    {
        try
        {
            await _inner.PutAsync(key, entry, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not InvalidCacheKeyException and not ArgumentException)
        {
            LogWriteFailed(key, e);
        }
    }

    public Task RemoveAsync(string key, CancellationToken cancellationToken) => TryRemoveAsync(key, cancellationToken);

    private async Task TryRemoveAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            await _inner.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRemoveFailed(key, e);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Action cache read for {CacheKey} failed; treating it as a miss")]
    private partial void LogReadFailed(string cacheKey, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Action cache entry {CacheKey} is unreadable; treating it as a miss and removing it")]
    private partial void LogCorrupt(string cacheKey, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Checking blob {BlobDigest} of action cache entry {CacheKey} failed; treating it as a miss")]
    private partial void LogStatFailed(string cacheKey, string blobDigest, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Action cache entry {CacheKey} names blob {BlobDigest}, which the store has with size {StoredSize}; treating it as a miss and removing it")]
    private partial void LogStale(string cacheKey, string blobDigest, long? storedSize);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Action cache write for {CacheKey} failed; the step will be rebuilt next time")]
    private partial void LogWriteFailed(string cacheKey, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Removing action cache entry {CacheKey} failed")]
    private partial void LogRemoveFailed(string cacheKey, Exception exception);
}
