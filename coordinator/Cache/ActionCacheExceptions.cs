using Farm.Contracts;
using Farm.Oci;

namespace Farm.Coordinator.Cache;

/// <summary>FARM4001: a cache key is not <c>sha256:</c> and 64 lower-case hex digits.</summary>
public sealed class InvalidCacheKeyException(string key)
    : FarmException(FarmErrorCodes.InvalidCacheKey, $"'{key}' is not a cache key; keys are 'sha256:' and 64 lower-case hex digits, as CacheKeyPlanner computes them")
{
    public string Key { get; } = key;

    /// <summary>Checks a key; returns its hex part, which is safe as a file name.</summary>
    internal static string Check(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Digest.TryParse(key, out var digest) && digest.Algorithm == "sha256" ? digest.Encoded : throw new InvalidCacheKeyException(key);
    }
}

/// <summary>FARM4002: the action cache's backend (Redis, the state directory) failed.</summary>
public sealed class ActionCacheUnavailableException(string where, string message, Exception? innerException = null)
    : FarmException(FarmErrorCodes.ActionCacheUnavailable, $"The action cache at {where} failed: {message}. Builds go on without cached layers; check that the backend is up (infra/up.sh starts Redis) and writable.", innerException);

/// <summary>FARM4003: an action-cache entry cannot be read; it is treated as a miss and replaced.</summary>
public sealed class ActionCacheCorruptEntryException(string key, string reason, Exception? innerException = null)
    : FarmException(FarmErrorCodes.ActionCacheCorruptEntry, $"The action-cache entry for {key} is unreadable ({reason}); it is ignored and rebuilt. If this repeats, change the cache salt.", innerException)
{
    public string Key { get; } = key;
}
