using Farm.Oci;
using StackExchange.Redis;

namespace Farm.Coordinator.Cache;

/// <summary>Settings of <see cref="RedisActionCache"/>.</summary>
public sealed record RedisActionCacheOptions
{
    /// <summary>Prepended to the cache key: <c>farm:ac:sha256:...</c> (docs/architecture.md, "Storage").</summary>
    public string KeyPrefix { get; init; } = "farm:ac:";

    /// <summary>
    /// A sorted set of cache keys scored by when a build last used (hit or wrote) each entry, in Unix milliseconds:
    /// what <c>farm system prune</c> orders by. A separate set, because reading the entry itself (even
    /// <c>OBJECT IDLETIME</c> then <c>GET</c>) would reset Redis' own idle time and lose the order.
    /// </summary>
    public string LastUsedKey { get; init; } = "farm:ac-used";

    /// <summary>How long an entry lives after it is written; null keeps it until Redis evicts it.</summary>
    public TimeSpan? TimeToLive { get; init; }
}

/// <summary>The cluster's action cache: one Redis string per key, holding the entry's JSON.</summary>
public sealed class RedisActionCache : IActionCache, IActionCacheInventory
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

        if (value.IsNull)
        {
            return null;
        }

        var entry = ActionCacheJson.Deserialize(key, (byte[])value!);
        Touch(key);
        return entry;
    }

    public async Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var redisKey = RedisKey(key);
        try
        {
            var expiry = _options.TimeToLive is { } ttl ? new Expiration(ttl) : Expiration.Default;
            await _database.StringSetAsync(redisKey, ActionCacheJson.Serialize(entry), expiry).WaitAsync(cancellationToken).ConfigureAwait(false);
            Touch(key);
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
            await _database.SortedSetRemoveAsync(_options.LastUsedKey, key).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable("delete", e);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Scans <c>PREFIX*</c> on every primary (SCAN, never KEYS, so Redis keeps answering builds meanwhile).</remarks>
    public async IAsyncEnumerable<ActionCacheRecord> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Dictionary<string, double> used;
        List<RedisKey> keys = [];
        try
        {
            var scores = await _database.SortedSetRangeByRankWithScoresAsync(_options.LastUsedKey).WaitAsync(cancellationToken).ConfigureAwait(false);
            used = scores.ToDictionary(e => (string)e.Element!, e => e.Score, StringComparer.Ordinal);
            foreach (var server in _database.Multiplexer.GetServers().Where(s => s.IsConnected && !s.IsReplica))
            {
                await foreach (var k in server.KeysAsync(_database.Database, _options.KeyPrefix + "*", pageSize: 500).WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    keys.Add(k);
                }
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw Unavailable("list", e);
        }

        foreach (var chunk in keys.Distinct().Chunk(200))
        {
            RedisValue[] values;
            try
            {
                values = await _database.StringGetAsync(chunk).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                throw Unavailable("read", e);
            }

            for (var i = 0; i < chunk.Length; i++)
            {
                var key = ((string)chunk[i]!)[_options.KeyPrefix.Length..];
                if (values[i].IsNull || !Digest.TryParse(key, out _))
                {
                    continue;
                }

                ActionCacheEntry entry;
                try
                {
                    entry = ActionCacheJson.Deserialize(key, (byte[])values[i]!);
                }
                catch (ActionCacheCorruptEntryException)
                {
                    continue;
                }

                var lastUsed = used.TryGetValue(key, out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds((long)ms) : entry.Created;
                yield return new ActionCacheRecord(key, entry, lastUsed);
            }
        }
    }

    /// <summary>Records a use without waiting for it: a lost update only costs the LRU order, never a hit.</summary>
    private void Touch(string key) =>
        _database.SortedSetAdd(_options.LastUsedKey, key, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), CommandFlags.FireAndForget);

    private RedisKey RedisKey(string key)
    {
        InvalidCacheKeyException.Check(key);
        return new RedisKey(_options.KeyPrefix + key);
    }

    private ActionCacheUnavailableException Unavailable(string operation, Exception e) =>
                // Endpoints, not the configuration string: that may hold the password.
        new($"Redis ({string.Join(", ", _database.Multiplexer.GetEndPoints().Select(p => p.ToString()))})", $"{operation} failed: {e.Message}", e);
}
