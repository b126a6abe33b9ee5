namespace Farm.Coordinator.Cache;

/// <summary>
/// Maps a step's cache key to the layer it produced (docs/architecture.md, "A build, step by step", 4 and 8). Adapters: Redis
/// for the cluster (<see cref="RedisActionCache"/>), files for the embedded farm (<see cref="FileActionCache"/>).
/// </summary>
/// <remarks>
/// Adapters report backend failures as <see cref="ActionCacheUnavailableException"/> and unreadable entries as
/// <see cref="ActionCacheCorruptEntryException"/>; <see cref="VerifyingActionCache"/> turns both into misses and
/// only returns hits whose blob is still in the store. <c>--no-cache</c> is the caller's: it skips
/// <see cref="TryGetAsync"/> and still calls <see cref="PutAsync"/>.
/// </remarks>
public interface IActionCache
{
    /// <summary>The entry under <paramref name="key"/> (<c>sha256:...</c>), or null.</summary>
    Task<ActionCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken);

    /// <summary>Records an entry; call only after the layer blob is in the blob store.</summary>
    Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken);

    /// <summary>Forgets an entry (e.g. its blob was garbage-collected); no error when absent.</summary>
    Task RemoveAsync(string key, CancellationToken cancellationToken);
}
