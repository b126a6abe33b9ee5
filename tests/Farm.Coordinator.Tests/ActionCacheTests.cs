using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Cache;
using Farm.Oci;
using Farm.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Farm.Coordinator.Tests;

internal static class Entries
{
    public static string NewKey() => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Guid.NewGuid().ToByteArray()));

    public static ActionCacheEntry For(LayerRef? layer) => new()
    {
        Layer = layer,
        Worker = "worker-1",
        Created = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero),
        BuildId = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff"),
    };

    public static LayerRef Layer(string seed, long size = 42) =>
        new("sha256:" + Hex(seed + "c"), "sha256:" + Hex(seed + "u"), MediaTypes.OciLayerGzip, size);

    private static string Hex(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}

/// <summary>
/// Tests on the shared Redis (infra/up.sh, or FARM_REDIS) under keys of their own (<see cref="KeyBase"/>), removed
/// afterwards; a Redis that does not answer fails the test saying how to start it.
/// </summary>
public abstract class SharedRedisTests : IAsyncLifetime
{
    private ConnectionMultiplexer? _redis;

    /// <summary>Every key the test writes starts with this.</summary>
    protected string KeyBase { get; } = $"farm:test:{Guid.NewGuid():N}:";

    protected ConnectionMultiplexer Redis => _redis ?? throw new InvalidOperationException("not connected");

    public async Task InitializeAsync()
    {
        var endpoint = Environment.GetEnvironmentVariable("FARM_REDIS") ?? "127.0.0.1:6379";
        try
        {
            _redis = await ConnectionMultiplexer.ConnectAsync($"{endpoint},connectTimeout=3000");
        }
        catch (RedisConnectionException e)
        {
            throw new InvalidOperationException($"Redis does not answer at {endpoint}: start it with infra/up.sh ({e.Message})", e);
        }
    }

    public async Task DisposeAsync()
    {
        if (_redis is null)
        {
            return;
        }

        var server = _redis.GetServer(_redis.GetEndPoints()[0]);
        await foreach (var key in server.KeysAsync(pattern: KeyBase + "*"))
        {
            await _redis.GetDatabase().KeyDeleteAsync(key);
        }

        await _redis.DisposeAsync();
    }
}

public sealed class RedisActionCacheTests : SharedRedisTests
{
    private string Prefix => KeyBase + "ac:";

    [Fact]
    public async Task An_entry_round_trips_under_farm_ac_key()
    {
        var cache = new RedisActionCache(Redis, new RedisActionCacheOptions { KeyPrefix = Prefix });
        var key = Entries.NewKey();
        Assert.Null(await cache.TryGetAsync(key, default));

        var entry = Entries.For(Entries.Layer("a"));
        await cache.PutAsync(key, entry, default);
        Assert.Equal(entry, await cache.TryGetAsync(key, default));

        // The stored form is the documented JSON under the prefix + key.
        var raw = (string?)await Redis.GetDatabase().StringGetAsync(Prefix + key);
        Assert.Contains("\"diff_id\":\"" + entry.Layer!.DiffId + "\"", raw, StringComparison.Ordinal);

        await cache.RemoveAsync(key, default);
        Assert.Null(await cache.TryGetAsync(key, default));
    }

    [Fact]
    public async Task An_empty_layer_round_trips()
    {
        var cache = new RedisActionCache(Redis, new RedisActionCacheOptions { KeyPrefix = Prefix });
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(null), default);
        var back = await cache.TryGetAsync(key, default);
        Assert.NotNull(back);
        Assert.True(back.IsEmptyLayer);
    }

    [Fact]
    public async Task The_time_to_live_is_set()
    {
        var cache = new RedisActionCache(Redis, new RedisActionCacheOptions { KeyPrefix = Prefix, TimeToLive = TimeSpan.FromHours(1) });
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(Entries.Layer("t")), default);
        var ttl = await Redis.GetDatabase().KeyTimeToLiveAsync(Prefix + key);
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromMinutes(59), TimeSpan.FromHours(1));
    }

    [Fact]
    public async Task A_corrupt_entry_is_reported_and_a_verifying_cache_makes_it_a_miss_and_removes_it()
    {
        var inner = new RedisActionCache(Redis, new RedisActionCacheOptions { KeyPrefix = Prefix });
        var key = Entries.NewKey();
        await Redis.GetDatabase().StringSetAsync(Prefix + key, "{not json");
        await Assert.ThrowsAsync<ActionCacheCorruptEntryException>(() => inner.TryGetAsync(key, default));

        using var dir = new TempDir();
        using var store = await OciLayoutStore.OpenOrCreateAsync(dir.Path, default);
        var cache = new VerifyingActionCache(inner, store, NullLogger<VerifyingActionCache>.Instance);
        Assert.Null(await cache.TryGetAsync(key, default));
        Assert.False(await Redis.GetDatabase().KeyExistsAsync(Prefix + key));
    }

    [Fact]
    public async Task A_prune_down_to_a_size_evicts_the_least_recently_hit_entries_and_their_last_use()
    {
        var options = new RedisActionCacheOptions { KeyPrefix = Prefix, LastUsedKey = Prefix + "used" };
        var cache = new RedisActionCache(Redis, options);
        var db = Redis.GetDatabase();
        var (hit, old1, old2) = (Entries.NewKey(), Entries.NewKey(), Entries.NewKey());
        await cache.PutAsync(hit, Entries.For(Entries.Layer("hit", 100)), CancellationToken.None);
        await cache.PutAsync(old1, Entries.For(Entries.Layer("old1", 100)), CancellationToken.None);
        await cache.PutAsync(old2, Entries.For(Entries.Layer("old2", 100)), CancellationToken.None);
        double? written = null;
        await Wait.UntilAsync(async () => (written = await db.SortedSetScoreAsync(options.LastUsedKey, old2)) is not null, TimeSpan.FromSeconds(30), () => "the last write's use to be recorded");
        // The hit must come at a later millisecond than the writes, or the order would be a tie.
        await Wait.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() > written!.Value + 1), TimeSpan.FromSeconds(30), () => "the clock to move on");
        Assert.NotNull(await cache.TryGetAsync(hit, CancellationToken.None));
        await Wait.UntilAsync(async () => await db.SortedSetScoreAsync(options.LastUsedKey, hit) > written, TimeSpan.FromSeconds(30), () => "the hit to be recorded as the latest use");

        var janitor = new BuildCacheJanitor(cache, cache, "registry://127.0.0.1:5100/farm/cache", localImages: null);
        var usage = await janitor.UsageAsync(CancellationToken.None);
        Assert.Equal((3, 300L), (usage.BuildCache.Entries, usage.BuildCache.Bytes));

        var pruned = await janitor.PruneAsync(new BuildCachePrune(null, KeepStorage: 150), CancellationToken.None);

        Assert.Equal((2, 2, 0L, 200L, false, 1, 100L), (pruned.EntriesRemoved, pruned.LayersRemoved, pruned.ReclaimedBytes, pruned.UnreferencedBytes, pruned.BlobsDeleted, pruned.EntriesLeft, pruned.BytesLeft));
        Assert.NotNull(await cache.TryGetAsync(hit, CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(old1, CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(old2, CancellationToken.None));
        Assert.Null(await db.SortedSetScoreAsync(options.LastUsedKey, old1));
    }

    [Fact]
    public async Task Keys_that_are_not_cache_keys_are_refused()
    {
        var cache = new RedisActionCache(Redis, new RedisActionCacheOptions { KeyPrefix = Prefix });
        var e = await Assert.ThrowsAsync<InvalidCacheKeyException>(() => cache.TryGetAsync("alpine:latest", default));
        Assert.Equal("FARM4001", e.Code);
    }
}

public sealed class FileActionCacheTests
{
    [Fact]
    public async Task An_entry_round_trips_and_survives_a_new_instance()
    {
        using var dir = new TempDir();
        var key = Entries.NewKey();
        var entry = Entries.For(Entries.Layer("f"));
        await new FileActionCache(dir.Path).PutAsync(key, entry, default);
        Assert.Equal(entry, await new FileActionCache(dir.Path).TryGetAsync(key, default));
        Assert.Null(await new FileActionCache(dir.Path).TryGetAsync(Entries.NewKey(), default));
    }

    [Fact]
    public async Task Writes_leave_no_temporary_files_and_replace_the_entry_whole()
    {
        using var dir = new TempDir();
        var cache = new FileActionCache(dir.Path);
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(Entries.Layer("1")), default);
        await cache.PutAsync(key, Entries.For(Entries.Layer("2")), default);
        Assert.Equal(Entries.Layer("2"), (await cache.TryGetAsync(key, default))!.Layer);
        Assert.Equal([cache.PathOf(key)], Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Concurrent_writers_and_readers_never_see_half_an_entry()
    {
        using var dir = new TempDir();
        var cache = new FileActionCache(dir.Path);
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(Entries.Layer("0")), default);
        var valid = Enumerable.Range(0, 8).Select(i => Entries.Layer(i.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToHashSet();
        var writers = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            for (var n = 0; n < 50; n++)
            {
                await cache.PutAsync(key, Entries.For(Entries.Layer(i.ToString(System.Globalization.CultureInfo.InvariantCulture))), default);
            }
        }));
        var reader = Task.Run(async () =>
        {
            for (var n = 0; n < 400; n++)
            {
                // A torn read would throw ActionCacheCorruptEntryException; a missing file would return null.
                var entry = await cache.TryGetAsync(key, default);
                Assert.NotNull(entry);
                Assert.Contains(entry.Layer!, valid);
            }
        });
        await Task.WhenAll([.. writers, reader]);
    }

    [Fact]
    public async Task A_key_cannot_name_a_path_outside_the_directory()
    {
        using var dir = new TempDir();
        var cache = new FileActionCache(dir.Path);
        await Assert.ThrowsAsync<InvalidCacheKeyException>(() => cache.PutAsync("sha256:../../etc/passwd", Entries.For(null), default));
    }
}

public sealed class VerifyingActionCacheTests
{
    [Fact]
    public async Task A_hit_is_used_while_its_blob_is_in_the_store_and_is_a_miss_once_the_blob_is_gone()
    {
        using var dir = new TempDir();
        using var store = await OciLayoutStore.OpenOrCreateAsync(Path.Combine(dir.Path, "store"), default);
        var blob = await store.PutBytesAsync(Encoding.UTF8.GetBytes("layer bytes"), MediaTypes.OciLayerGzip, default);
        var inner = new FileActionCache(Path.Combine(dir.Path, "ac"));
        var cache = new VerifyingActionCache(inner, store, NullLogger<VerifyingActionCache>.Instance);
        var key = Entries.NewKey();
        var entry = Entries.For(new LayerRef(blob.Digest.ToString(), Entries.Layer("x").DiffId, blob.MediaType, blob.Size));
        await cache.PutAsync(key, entry, default);
        Assert.Equal(entry, await cache.TryGetAsync(key, default));

        File.Delete(Path.Combine(store.Root, "blobs", "sha256", blob.Digest.Encoded));
        Assert.Null(await cache.TryGetAsync(key, default));
        Assert.Null(await inner.TryGetAsync(key, default)); // the stale entry was removed
    }

    [Fact]
    public async Task A_hit_whose_blob_has_another_size_is_a_miss()
    {
        using var dir = new TempDir();
        using var store = await OciLayoutStore.OpenOrCreateAsync(dir.Path, default);
        var blob = await store.PutBytesAsync(Encoding.UTF8.GetBytes("layer"), MediaTypes.OciLayerGzip, default);
        var cache = new VerifyingActionCache(new FileActionCache(Path.Combine(dir.Path, "ac")), store, NullLogger<VerifyingActionCache>.Instance);
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(new LayerRef(blob.Digest.ToString(), blob.Digest.ToString(), blob.MediaType, blob.Size + 1)), default);
        Assert.Null(await cache.TryGetAsync(key, default));
    }

    [Fact]
    public async Task An_empty_layer_hit_needs_no_blob()
    {
        using var dir = new TempDir();
        using var store = await OciLayoutStore.OpenOrCreateAsync(dir.Path, default);
        var cache = new VerifyingActionCache(new FileActionCache(Path.Combine(dir.Path, "ac")), store, NullLogger<VerifyingActionCache>.Instance);
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(null), default);
        Assert.True((await cache.TryGetAsync(key, default))!.IsEmptyLayer);
    }

    [Fact]
    public async Task A_failing_backend_is_a_miss_on_read_and_ignored_on_write()
    {
        using var dir = new TempDir();
        using var store = await OciLayoutStore.OpenOrCreateAsync(dir.Path, default);
        var cache = new VerifyingActionCache(new BrokenCache(), store, NullLogger<VerifyingActionCache>.Instance);
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(null), default);
        Assert.Null(await cache.TryGetAsync(key, default));
    }

    [Fact]
    public async Task An_unreachable_redis_is_a_miss_not_a_failure()
    {
        // Nothing listens on port 1: every call fails fast, as when Redis is down mid-build.
        await using var redis = await ConnectionMultiplexer.ConnectAsync("127.0.0.1:1,abortConnect=false,connectTimeout=200,syncTimeout=500,asyncTimeout=500");
        using var dir = new TempDir();
        using var store = await OciLayoutStore.OpenOrCreateAsync(dir.Path, default);
        var cache = new VerifyingActionCache(new RedisActionCache(redis), store, NullLogger<VerifyingActionCache>.Instance);
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(null), default);
        Assert.Null(await cache.TryGetAsync(key, default));
    }

    private sealed class BrokenCache : IActionCache
    {
        public Task<ActionCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken) =>
            throw new ActionCacheUnavailableException("nowhere", "down");

        public Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken) =>
            throw new ActionCacheUnavailableException("nowhere", "down");

        public Task RemoveAsync(string key, CancellationToken cancellationToken) =>
            throw new ActionCacheUnavailableException("nowhere", "down");
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("farm-ac-").FullName;
    }

    public string Path { get; }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
