using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Farm.Oci.Tests;

public sealed class LayoutStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-layout-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task New_layout_has_the_version_file_and_an_empty_index()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        Assert.Equal("1.0.0", (string?)JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "oci-layout")))!["imageLayoutVersion"]);
        Assert.Empty((await store.ReadIndexAsync(CancellationToken.None)).Manifests);
    }

    [Fact]
    public async Task Blob_is_stored_under_its_digest_and_reads_back()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(5000), MediaTypes.OciLayerGzip);
        using (var stream = blob.Open())
        {
            await store.PutAsync(blob.Descriptor, stream, CancellationToken.None);
        }

        Assert.True(File.Exists(Path.Combine(_dir, "blobs", "sha256", blob.Descriptor.Digest.Encoded)));
        Assert.Equal(5000, await store.StatAsync(blob.Descriptor.Digest, CancellationToken.None));
        Assert.Equal(blob.Content, await TestClients.ReadAllAsync(await store.OpenReadAsync(blob.Descriptor.Digest, CancellationToken.None)));
    }

    [Fact]
    public async Task Mismatched_content_leaves_nothing_behind()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(100), MediaTypes.OciLayerGzip);
        using var wrong = new MemoryStream(RandomNumberGenerator.GetBytes(100));

        await Assert.ThrowsAsync<DigestMismatchException>(() => store.PutAsync(blob.Descriptor, wrong, CancellationToken.None));

        Assert.Null(await store.StatAsync(blob.Descriptor.Digest, CancellationToken.None));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_dir, "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Missing_blob_throws_not_found()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        await Assert.ThrowsAsync<BlobNotFoundException>(() => store.OpenReadAsync(Digest.Sha256("nothing"u8), CancellationToken.None));
    }

    [Fact]
    public async Task Tagging_again_replaces_the_entry_and_keeps_other_tags()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        var first = RegistryTestImage.Create("first", layers: 1);
        var second = RegistryTestImage.Create("second", layers: 1);
        await first.WriteToAsync(store, "latest");
        await first.WriteToAsync(store, "stable");
        await second.WriteToAsync(store, "latest");

        var index = await store.ReadIndexAsync(CancellationToken.None);
        Assert.Equal(2, index.Manifests.Count);
        Assert.Equal(second.Digest, (await store.ResolveAsync("latest", CancellationToken.None))!.Digest);
        Assert.Equal(first.Digest, (await store.ResolveAsync("stable", CancellationToken.None))!.Digest);
        Assert.Equal(["stable", "latest"], await store.ListTagsAsync(CancellationToken.None));

        var (descriptor, manifest) = await store.ReadTaggedManifestAsync("latest", CancellationToken.None);
        Assert.Equal(second.Digest, descriptor.Digest);
        Assert.Equal(second.Config.Descriptor.Digest, manifest.Config.Digest);
        var config = await store.ReadConfigAsync(manifest.Config, CancellationToken.None);
        Assert.Single(config.DiffIds);

        Assert.True(await store.UntagAsync("stable", CancellationToken.None));
        Assert.Null(await store.ResolveAsync("stable", CancellationToken.None));
    }

    [Fact]
    public async Task Tagging_a_manifest_that_is_not_stored_is_refused()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        var image = RegistryTestImage.Create("absent", layers: 1);
        await Assert.ThrowsAsync<BlobNotFoundException>(() => store.TagAsync("x", image.ManifestDescriptor, CancellationToken.None));
    }

    [Fact]
    public async Task Tagging_again_leaves_the_index_as_it_is_and_a_new_image_takes_the_tag()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        var first = RegistryTestImage.Create("first", layers: 1);
        var second = RegistryTestImage.Create("second", layers: 1);
        await first.WriteToAsync(store, "app");
        await second.WriteToAsync(store, "other");
        var index = Path.Combine(_dir, "index.json");
        var before = await File.ReadAllBytesAsync(index);
        var written = new FileInfo(index).LastWriteTimeUtc;

        await first.WriteToAsync(store, "app");
        Assert.Equal(before, await File.ReadAllBytesAsync(index));
        Assert.Equal(written, new FileInfo(index).LastWriteTimeUtc);

        await second.WriteToAsync(store, "app");
        var entries = (await store.ReadIndexAsync(CancellationToken.None)).Manifests;
        Assert.Equal(2, entries.Count);
        Assert.All(entries, e => Assert.Equal(second.ManifestDescriptor.Digest, e.Digest));
        Assert.Equal(second.ManifestDescriptor.Digest, (await store.ReadTaggedManifestAsync("app", CancellationToken.None)).Descriptor.Digest);
    }

    [Fact]
    public async Task Unknown_tag_lists_the_tags_there_are()
    {
        using var store = await OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None);
        await RegistryTestImage.Create("t", layers: 1).WriteToAsync(store, "present");
        var error = await Assert.ThrowsAsync<OciLayoutException>(() => store.ReadTaggedManifestAsync("absent", CancellationToken.None));
        Assert.Contains("present", error.Message);
        Assert.StartsWith("FARM2230", error.Message);
    }

    [Fact]
    public async Task Layout_of_an_unknown_version_is_refused()
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "oci-layout"), """{"imageLayoutVersion":"2.0.0"}""");
        var error = await Assert.ThrowsAsync<OciLayoutException>(() => OciLayoutStore.OpenOrCreateAsync(_dir, CancellationToken.None));
        Assert.Contains("2.0.0", error.Message);
    }
}
