using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Cache;
using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Tests;

/// <summary>
/// <see cref="ReferencingActionCache"/> over the Redis action cache (keys of its own) and a distribution registry of
/// the test's own, whose garbage collection (<c>docker-registry garbage-collect</c>) it runs: the layers of entries
/// survive a collection, an evicted entry's layer does not, and a registry without deletes makes a prune report
/// FARM4290 instead of failing.
/// </summary>
public sealed class CacheReferenceTests : SharedRedisTests
{
    private const string Repository = "farm/cache";

    [Fact]
    public async Task Entries_layers_survive_a_garbage_collection_and_a_pruned_entrys_layer_does_not()
    {
        await using var setup = await CacheStore.StartAsync(this);
        var (registry, client, store, inner, cache, janitor) = setup;

        var kept = await PushLayerAsync(store);
        var evicted = await PushLayerAsync(store);
        var stray = await PushLayerAsync(store);
        var (keptKey, evictedKey, twinKey) = (Entries.NewKey(), Entries.NewKey(), Entries.NewKey());
        await cache.PutAsync(evictedKey, Entries.For(evicted), CancellationToken.None);
        await cache.PutAsync(keptKey, Entries.For(kept), CancellationToken.None);
        // Another step that made the same layer: its own manifest, which the eviction below must not take along.
        await cache.PutAsync(twinKey, Entries.For(evicted), CancellationToken.None);
        await cache.PutAsync(keptKey, Entries.For(kept), CancellationToken.None);

        var tags = await client.ListTagsAsync(Repository, CancellationToken.None);
        Assert.Equal(
            new[] { keptKey, evictedKey, twinKey }.Select(ReferencingActionCache.TagOf).Order(),
            tags.Order());
        var manifest = await client.GetManifestAsync(Repository, ReferencingActionCache.TagOf(keptKey), CancellationToken.None);
        var json = JsonNode.Parse(manifest.Content.Span)!.AsObject();
        Assert.Equal(ReferencingActionCache.ArtifactType, (string?)json["artifactType"]);
        Assert.Equal(MediaTypes.OciEmpty, (string?)json["config"]!["mediaType"]);
        Assert.Equal(kept.Digest, (string?)json["layers"]!.AsArray().Single()!["digest"]);
        Assert.Equal(keptKey, (string?)json["annotations"]![ReferencingActionCache.KeyAnnotation]);
        Assert.Equal(["schemaVersion", "mediaType", "artifactType", "config", "layers", "annotations"], json.Select(p => p.Key));

        var collected = await registry.GarbageCollectAsync();
        Assert.True(registry.HoldsBlob(kept.Digest) && registry.HoldsBlob(evicted.Digest), collected);
        Assert.False(registry.HoldsBlob(stray.Digest), "the collection did not delete a blob no manifest refers to: " + collected);
        Assert.NotNull(await new VerifyingActionCache(inner, store, NullLogger<VerifyingActionCache>.Instance).TryGetAsync(keptKey, CancellationToken.None));

        // Last uses: the evicted entry long ago, the twin before the kept one.
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await Redis.GetDatabase().SortedSetAddAsync(KeyBase + "ac-used", [new(evictedKey, 1), new(twinKey, now - 1000), new(keptKey, now)]);
        var pruned = await janitor.PruneAsync(new BuildCachePrune(TimeSpan.FromDays(1), null), CancellationToken.None);
        Assert.Equal((1, 0, 2), (pruned.EntriesRemoved, pruned.ReferencesKept, pruned.EntriesLeft));
        Assert.Equal(new[] { keptKey, twinKey }.Select(ReferencingActionCache.TagOf).Order(), (await client.ListTagsAsync(Repository, CancellationToken.None)).Order());
        collected = await registry.GarbageCollectAsync();
        Assert.True(registry.HoldsBlob(evicted.Digest), "a layer another entry still uses was collected: " + collected);

        pruned = await janitor.PruneAsync(new BuildCachePrune(null, kept.Size), CancellationToken.None);
        Assert.Equal((1, 0, 1), (pruned.EntriesRemoved, pruned.ReferencesKept, pruned.EntriesLeft));
        Assert.Equal([ReferencingActionCache.TagOf(keptKey)], await client.ListTagsAsync(Repository, CancellationToken.None));
        collected = await registry.GarbageCollectAsync();
        Assert.True(registry.HoldsBlob(kept.Digest), collected);
        Assert.False(registry.HoldsBlob(evicted.Digest), "the evicted entries' layer survived the collection: " + collected);
        Assert.NotNull(await cache.TryGetAsync(keptKey, CancellationToken.None));
    }

    [Fact]
    public async Task A_registry_without_deletes_makes_the_prune_report_FARM4290_and_the_entries_go_all_the_same()
    {
        await using var setup = await CacheStore.StartAsync(this, deletes: false);
        var (_, client, store, inner, cache, janitor) = setup;
        var key = Entries.NewKey();
        await cache.PutAsync(key, Entries.For(await PushLayerAsync(store)), CancellationToken.None);

        var pruned = await janitor.PruneAsync(new BuildCachePrune(null, null), CancellationToken.None);

        Assert.Equal((1, 1, 0), (pruned.EntriesRemoved, pruned.ReferencesKept, pruned.EntriesLeft));
        Assert.StartsWith(FarmErrorCodes.CacheDeletesRefused + ":", pruned.Warning, StringComparison.Ordinal);
        Assert.Contains("storage.delete.enabled: true", pruned.Warning, StringComparison.Ordinal);
        Assert.Null(await inner.TryGetAsync(key, CancellationToken.None));
        Assert.Equal([ReferencingActionCache.TagOf(key)], await client.ListTagsAsync(Repository, CancellationToken.None));
    }

    [Fact]
    public async Task A_prune_gives_an_entry_without_a_manifest_one_and_deletes_a_manifest_whose_entry_is_gone()
    {
        await using var setup = await CacheStore.StartAsync(this);
        var (registry, client, store, inner, cache, janitor) = setup;
        var (lost, bare) = (await PushLayerAsync(store), await PushLayerAsync(store));
        var (lostKey, bareKey) = (Entries.NewKey(), Entries.NewKey());
        await cache.PutAsync(lostKey, Entries.For(lost), CancellationToken.None);
        // The entry goes without its manifest, as when Redis loses its data; another is written without one, as before
        // cache manifests existed.
        await inner.RemoveAsync(lostKey, CancellationToken.None);
        await inner.PutAsync(bareKey, Entries.For(bare), CancellationToken.None);

        var pruned = await janitor.PruneAsync(new BuildCachePrune(null, long.MaxValue), CancellationToken.None);

        Assert.Equal((0, 1), (pruned.EntriesRemoved, pruned.EntriesLeft));
        Assert.Equal([ReferencingActionCache.TagOf(bareKey)], await client.ListTagsAsync(Repository, CancellationToken.None));
        var collected = await registry.GarbageCollectAsync();
        Assert.True(registry.HoldsBlob(bare.Digest), "the entry's layer was collected: " + collected);
        Assert.False(registry.HoldsBlob(lost.Digest), "the layer of a manifest without an entry survived the collection: " + collected);
    }

    /// <summary>A registry of the test's own, its cache repository, and the action cache over it with its janitor.</summary>
    private sealed record CacheStore(RegistryServer Registry, RegistryClient Client, RegistryBlobStore Store, RedisActionCache Inner, ReferencingActionCache Cache, BuildCacheJanitor Janitor) : IAsyncDisposable
    {
        public static async Task<CacheStore> StartAsync(CacheReferenceTests test, bool deletes = true)
        {
            var registry = await RegistryServer.StartAsync(deletes);
            var client = new RegistryClient(registry.Address);
            var store = new RegistryBlobStore(client, Repository);
            var inner = new RedisActionCache(test.Redis, new RedisActionCacheOptions { KeyPrefix = test.KeyBase + "ac:", LastUsedKey = test.KeyBase + "ac-used" });
            var cache = new ReferencingActionCache(inner, store, NullLogger<ReferencingActionCache>.Instance);
            return new CacheStore(registry, client, store, inner, cache, new BuildCacheJanitor(inner, cache, $"registry://{store}", localImages: null, references: cache));
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Registry.DisposeAsync();
        }
    }

    /// <summary>A random blob as a layer: the registry does not look inside.</summary>
    private static async Task<LayerRef> PushLayerAsync(RegistryBlobStore store)
    {
        var bytes = RandomNumberGenerator.GetBytes(1000);
        var digest = Digest.Sha256(bytes);
        await store.PutAsync(new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = digest, Size = bytes.Length }, new MemoryStream(bytes), CancellationToken.None);
        return new LayerRef(digest.ToString(), digest.ToString(), MediaTypes.OciLayerGzip, bytes.Length);
    }
}
