namespace Farm.Coordinator.Cache;

/// <summary>One action cache entry as <c>farm system df</c> and <c>farm system prune</c> see it: its key, what it maps to, and when a build last used it.</summary>
/// <param name="Key">The cache key, <c>sha256:...</c>.</param>
/// <param name="Entry">The entry.</param>
/// <param name="LastUsed">When a build last hit it (or wrote it): the least recently used go first when the cache is pruned.</param>
public sealed record ActionCacheRecord(string Key, ActionCacheEntry Entry, DateTimeOffset LastUsed);

/// <summary>
/// An action cache whose entries can be listed, for the cache's lifecycle (<see cref="BuildCacheJanitor"/>): how much
/// it holds, and which entries to evict first. Both adapters record a hit's time without a second write of the entry:
/// the file cache through the file's modification time, Redis through its own per-key idle time (<c>OBJECT IDLETIME</c>,
/// which every <c>GET</c> resets).
/// </summary>
public interface IActionCacheInventory
{
    /// <summary>Every entry; unreadable ones are left out (a lookup treats them as misses anyway).</summary>
    IAsyncEnumerable<ActionCacheRecord> ListAsync(CancellationToken cancellationToken);
}
