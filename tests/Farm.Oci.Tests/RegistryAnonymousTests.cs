using System.Security.Cryptography;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Oci.Tests;

/// <summary>Pull and push against the anonymous registry (127.0.0.1:5100) that infra/registry.sh starts.</summary>
public sealed class RegistryAnonymousTests : IAsyncLifetime
{
    private readonly RegistryClient _client = TestClients.For(TestRegistries.Anonymous);

    public Task InitializeAsync() => TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);

    public Task DisposeAsync()
    {
        _client.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Pushed_image_pulls_back_by_tag_and_by_digest_with_identical_content()
    {
        var repo = TestClients.UniqueRepository("anon");
        var image = RegistryTestImage.Create("anon");
        await image.PushAsync(_client, repo, "v1");

        var byTag = await _client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Anonymous}/{repo}:v1"), CancellationToken.None);
        Assert.Equal(image.Digest, byTag.Digest);
        Assert.Equal(image.ManifestBytes, byTag.Raw.Content.ToArray());
        Assert.Equal(MediaTypes.OciManifest, byTag.Raw.MediaType);
        Assert.Null(byTag.Index);

        var byDigest = await _client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Anonymous}/{repo}@{image.Digest}"), CancellationToken.None);
        Assert.Equal(image.Digest, byDigest.Digest);

        var config = await _client.GetConfigAsync(repo, byTag.Manifest.Config, CancellationToken.None);
        Assert.Equal(["/hello"], config.Cmd);
        Assert.Equal(2, config.DiffIds.Count);
        for (var i = 0; i < image.Layers.Count; i++)
        {
            var layer = byTag.Manifest.Layers[i];
            var content = await TestClients.ReadAllAsync(await _client.OpenBlobAsync(repo, layer.Digest, layer.Size, CancellationToken.None));
            Assert.Equal(image.Layers[i].Content, content);
        }

        Assert.Equal(image.Config.Descriptor.Size, await _client.StatBlobAsync(repo, image.Config.Descriptor.Digest, CancellationToken.None));
        Assert.Equal(MediaTypes.OciManifest, (await _client.HeadManifestAsync(repo, "v1", CancellationToken.None))!.MediaType);
        Assert.Equal(new Uri($"http://{TestRegistries.Anonymous}/"), _client.BaseUri);
    }

    [Fact]
    public async Task Pushing_a_blob_twice_reports_it_already_there()
    {
        var repo = TestClients.UniqueRepository("twice");
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(1000), MediaTypes.OciLayerGzip);
        using (var first = blob.Open())
        {
            Assert.Equal(BlobOutcome.Uploaded, await _client.PushBlobAsync(repo, blob.Descriptor, first, null, CancellationToken.None));
        }

        using var second = blob.Open();
        Assert.Equal(BlobOutcome.Exists, await _client.PushBlobAsync(repo, blob.Descriptor, second, null, CancellationToken.None));
        Assert.Equal(0, second.Position);
    }

    [Fact]
    public async Task Blob_in_another_repository_is_mounted_not_uploaded()
    {
        var source = TestClients.UniqueRepository("mount-src");
        var target = TestClients.UniqueRepository("mount-dst");
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(4096), MediaTypes.OciLayerGzip);
        using (var stream = blob.Open())
        {
            await _client.PushBlobAsync(source, blob.Descriptor, stream, null, CancellationToken.None);
        }

        using var unread = blob.Open();
        var result = await _client.PushBlobAsync(target, blob.Descriptor, unread, mountFrom: source, CancellationToken.None);

        Assert.Equal(BlobOutcome.Mounted, result);
        Assert.Equal(0, unread.Position);
        Assert.Equal(blob.Content, await TestClients.ReadAllAsync(await _client.OpenBlobAsync(target, blob.Descriptor.Digest, blob.Descriptor.Size, CancellationToken.None)));
    }

    [Fact]
    public async Task Mount_from_a_repository_without_the_blob_is_declined()
    {
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(100), MediaTypes.OciLayerGzip);
        Assert.False(await _client.MountBlobAsync(TestClients.UniqueRepository("nomount"), blob.Descriptor.Digest, TestClients.UniqueRepository("empty"), CancellationToken.None));
    }

    [Fact]
    public async Task Large_blob_is_uploaded_in_chunks_and_reads_back_intact()
    {
        var options = new RegistryClientOptions { CertsDirectory = TestRegistries.CertsDirectory, ChunkedUploadThreshold = 1024 * 1024, ChunkSize = 1024 * 1024 };
        using var client = TestClients.For(TestRegistries.Anonymous, options: options);
        var repo = TestClients.UniqueRepository("chunked");
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes((5 * 1024 * 1024) + 12345), MediaTypes.OciLayerGzip);

        using (var stream = blob.Open())
        {
            Assert.Equal(BlobOutcome.Uploaded, await client.PushBlobAsync(repo, blob.Descriptor, stream, null, CancellationToken.None));
        }

        Assert.Equal(blob.Descriptor.Size, await client.StatBlobAsync(repo, blob.Descriptor.Digest, CancellationToken.None));
        var back = await TestClients.ReadAllAsync(await client.OpenBlobAsync(repo, blob.Descriptor.Digest, blob.Descriptor.Size, CancellationToken.None));
        Assert.Equal(blob.Descriptor.Digest, Digest.Sha256(back));
    }

    [Fact]
    public async Task Content_that_does_not_match_its_descriptor_is_not_pushed()
    {
        var repo = TestClients.UniqueRepository("badpush");
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(3000), MediaTypes.OciLayerGzip);
        var other = RandomNumberGenerator.GetBytes(3000);

        using var stream = new MemoryStream(other);
        await Assert.ThrowsAsync<DigestMismatchException>(() => _client.PushBlobAsync(repo, blob.Descriptor, stream, null, CancellationToken.None));
        Assert.Null(await _client.StatBlobAsync(repo, blob.Descriptor.Digest, CancellationToken.None));
    }

    [Fact]
    public async Task Corrupted_blob_in_the_registry_is_refused_on_download()
    {
        var repo = TestClients.UniqueRepository("corrupt");
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(2048), MediaTypes.OciLayerGzip);
        using (var stream = blob.Open())
        {
            await _client.PushBlobAsync(repo, blob.Descriptor, stream, null, CancellationToken.None);
        }

        // Flip the stored bytes behind the registry's back, keeping the size.
        var hex = blob.Descriptor.Digest.Encoded;
        var data = Path.Combine(TestRegistries.StorageDir(TestRegistries.Anonymous), "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
        Assert.True(File.Exists(data), $"expected the registry to store the blob at {data}");
        await File.WriteAllBytesAsync(data, RandomNumberGenerator.GetBytes(2048));

        var download = await _client.OpenBlobAsync(repo, blob.Descriptor.Digest, blob.Descriptor.Size, CancellationToken.None);
        var error = await Assert.ThrowsAsync<DigestMismatchException>(() => TestClients.ReadAllAsync(download));
        Assert.Equal(blob.Descriptor.Digest, error.Expected);
        Assert.Contains("FARM2002", error.Message);
    }

    [Fact]
    public async Task Tag_list_follows_pagination_to_the_last_page()
    {
        var options = new RegistryClientOptions { CertsDirectory = TestRegistries.CertsDirectory, TagPageSize = 2 };
        using var client = TestClients.For(TestRegistries.Anonymous, options: options);
        var repo = TestClients.UniqueRepository("tags");
        var image = RegistryTestImage.Create("tags", layers: 1);
        await image.PushAsync(client, repo, "a");
        foreach (var tag in new[] { "b", "c", "d", "e" })
        {
            await client.PushManifestAsync(repo, tag, image.ManifestBytes, MediaTypes.OciManifest, CancellationToken.None);
        }

        Assert.Equal(["a", "b", "c", "d", "e"], (await client.ListTagsAsync(repo, CancellationToken.None)).Order());
    }

    [Fact]
    public async Task Index_resolves_to_the_linux_amd64_manifest()
    {
        var repo = TestClients.UniqueRepository("index");
        var amd64 = RegistryTestImage.Create("amd64", layers: 1);
        var arm64 = RegistryTestImage.Create("arm64", layers: 1);
        await amd64.PushAsync(_client, repo, "amd64");
        await arm64.PushAsync(_client, repo, "arm64");
        var index = new ImageIndex
        {
            Manifests =
            [
                arm64.ManifestDescriptor with { Platform = new Platform { Os = "linux", Architecture = "arm64", Variant = "v8" } },
                amd64.ManifestDescriptor with { Platform = Platform.LinuxAmd64 },
            ],
        };
        var indexBytes = OciJson.Serialize(index);
        await _client.PushManifestAsync(repo, "multi", indexBytes, MediaTypes.OciIndex, CancellationToken.None);

        var pulled = await _client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Anonymous}/{repo}:multi"), CancellationToken.None);

        Assert.Equal(amd64.Digest, pulled.Digest);
        Assert.Equal(Digest.Sha256(indexBytes), pulled.Index!.Digest);
        Assert.Equal(MediaTypes.OciIndex, pulled.Index.MediaType);
    }

    [Fact]
    public async Task Missing_tag_is_reported_with_its_name()
    {
        var repo = TestClients.UniqueRepository("missing");
        var error = await Assert.ThrowsAsync<ManifestNotFoundException>(() =>
            _client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Anonymous}/{repo}:nope"), CancellationToken.None));
        Assert.Contains($"{repo}:nope", error.Message);
        Assert.StartsWith("FARM2212", error.Message);
    }

    [Fact]
    public async Task Missing_blob_is_reported_as_not_found()
    {
        var digest = Digest.Sha256(RandomNumberGenerator.GetBytes(10));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => _client.OpenBlobAsync(TestClients.UniqueRepository("noblob"), digest, null, CancellationToken.None));
        Assert.Null(await _client.StatBlobAsync(TestClients.UniqueRepository("noblob"), digest, CancellationToken.None));
    }

    [Fact]
    public async Task Registry_blob_store_round_trips_through_the_blob_store_interface()
    {
        var store = new RegistryBlobStore(_client, TestClients.UniqueRepository("cas"));
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(777), MediaTypes.OciLayerGzip);
        Assert.Null(await store.StatAsync(blob.Descriptor.Digest, CancellationToken.None));
        using (var stream = blob.Open())
        {
            await store.PutAsync(blob.Descriptor, stream, CancellationToken.None);
        }

        Assert.Equal(777, await store.StatAsync(blob.Descriptor.Digest, CancellationToken.None));
        Assert.Equal(blob.Content, await TestClients.ReadAllAsync(await store.OpenReadAsync(blob.Descriptor.Digest, CancellationToken.None)));
    }

    [Fact]
    public async Task Unreachable_registry_fails_with_a_clear_error()
    {
        var options = new RegistryClientOptions { CertsDirectory = TestRegistries.CertsDirectory, MaxRetries = 1, RetryBaseDelay = TimeSpan.FromMilliseconds(1) };
        using var client = TestClients.For("127.0.0.1:5199", options: options);
        var error = await Assert.ThrowsAsync<RegistryUnavailableException>(() => client.PingAsync(CancellationToken.None));
        Assert.Contains("127.0.0.1:5199", error.Message);
        Assert.Contains("Check that the registry runs", error.Message);
    }
}
