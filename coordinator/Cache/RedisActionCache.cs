using StackExchange.Redis;

namespace Farm.Coordinator.Cache;

/// <summary>Settings of <see cref="RedisActionCache"/>.</summary>
public sealed record RedisActionCacheOptions
{
    /// <summary>Prepended to the cache key: <c>farm:ac:sha256:...</c> (docs/architecture.md, "Storage").</summary>
    public string KeyPrefix { get; init; } = "farm:ac:";

    /// <summary>How long an entry lives after it is written; null keeps it until Redis evicts it.</summary>
    public TimeSpan? TimeToLive { get; init; }
}

/// <summary>The cluster's action cache: one Redis string per key, holding the entry's JSON.</summary>
public sealed class RedisActionCache : IActionCache
{
    private readonly IDatabase _database;
    private readonly RedisActionCacheOptions _options;

    public RedisActionCache(IConnectionMultiplexer redis, RedisActionCacheOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _database = redis.GetDatabase();
        _options = options ?? new RedisActionCacheOptions();
    }

    public async Task<ActionCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken)
    {
        var redisKey = RedisKey(key);
        RedisValue value;
        try
        {
            // StackExchange.Redis takes no token; its own timeouts bound the call.
            value = await _database.StringGetAsync(redisKey).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable("read", e);
        }

        return value.IsNull ? null : ActionCacheJson.Deserialize(key, (byte[])value!);
    }

    public async Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var redisKey = RedisKey(key);
        try
        {
            var expiry = _options.TimeToLive is { } ttl ? new Expiration(ttl) : Expiration.Default;
            await _database.StringSetAsync(redisKey, ActionCacheJson.Serialize(entry), expiry).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable("write", e);
        }
    }

    public async Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        var redisKey = RedisKey(key);
        try
        {
            await _database.KeyDeleteAsync(redisKey).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable("delete", e);
        }
    }

    private RedisKey RedisKey(string key)
    {
        InvalidCacheKeyException.Check(key);
        return new RedisKey(_options.KeyPrefix + key);
    }

    private ActionCacheUnavailableException Unavailable(string operation, Exception e) =>
                // Endpoints, not the configuration string: that may hold the password.
        new($"Redis ({string.Join(", ", _database.Multiplexer.GetEndPoints().Select(p => p.ToString()))})", $"{operation} failed: {e.Message}", e);
}
