using System.Security.Cryptography;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Oci.Tests;

/// <summary>The one blob copy between stores: layouts on disk and repositories of the anonymous registry.</summary>
public sealed class BlobCopyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-blobcopy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_blob_is_copied_once_then_found_in_the_target()
    {
        using var source = await Layout("source");
        using var target = await Layout("target");
        var blob = await StoreAsync(source, 3000);

        var first = await BlobCopy.CopyBlobAsync(source, target, blob.Descriptor, CancellationToken.None);
        var second = await BlobCopy.CopyBlobAsync(source, target, blob.Descriptor, CancellationToken.None);

        Assert.Equal(new BlobCopied(BlobOutcome.Uploaded, source), first);
        Assert.Equal(new BlobCopied(BlobOutcome.Exists, null), second);
        Assert.Equal(blob.Content, await TestClients.ReadAllAsync(await target.OpenReadAsync(blob.Descriptor.Digest, CancellationToken.None)));
    }

    [Fact]
    public async Task Corrupt_source_content_fails_the_copy_and_leaves_nothing_in_the_target()
    {
        using var source = await Layout("source");
        using var target = await Layout("target");
        var blob = await StoreAsync(source, 3000);
        await File.WriteAllBytesAsync(Path.Combine(source.Root, "blobs", "sha256", blob.Descriptor.Digest.Encoded), RandomNumberGenerator.GetBytes(3000));

        await Assert.ThrowsAsync<DigestMismatchException>(() => BlobCopy.CopyBlobAsync(source, target, blob.Descriptor, CancellationToken.None));

        Assert.Null(await target.StatAsync(blob.Descriptor.Digest, CancellationToken.None));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(target.Root, "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task The_first_source_that_has_the_blob_gives_it_and_none_having_it_names_every_source()
    {
        using var empty = await Layout("empty");
        using var full = await Layout("full");
        using var target = await Layout("target");
        var blob = await StoreAsync(full, 100);

        var copied = await BlobCopy.CopyBlobAsync([empty, full], target, blob.Descriptor, CancellationToken.None);
        var missing = TestBlob.Of(RandomNumberGenerator.GetBytes(100), MediaTypes.OciLayerGzip);
        var error = await Assert.ThrowsAsync<BlobUnavailableException>(() => BlobCopy.CopyBlobAsync([empty, full], target, missing.Descriptor, CancellationToken.None));

        Assert.Same(full, copied.From);
        Assert.StartsWith("FARM4111", error.Message, StringComparison.Ordinal);
        Assert.Contains(empty.Root, error.Message, StringComparison.Ordinal);
        Assert.Contains(full.Root, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Within_one_registry_the_blob_is_mounted_and_from_a_registry_into_a_layout_it_is_copied()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        using var client = TestClients.For(TestRegistries.Anonymous);
        var cache = new RegistryBlobStore(client, TestClients.UniqueRepository("copy-src"));
        var app = new RegistryBlobStore(client, TestClients.UniqueRepository("copy-dst"));
        using var local = await Layout("local");
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(4096), MediaTypes.OciLayerGzip);
        using (var stream = blob.Open())
        {
            await cache.PutAsync(blob.Descriptor, stream, CancellationToken.None);
        }

        var mounted = await BlobCopy.CopyBlobAsync(cache, app, blob.Descriptor, CancellationToken.None);
        var pulled = await BlobCopy.CopyBlobAsync(app, local, blob.Descriptor, CancellationToken.None);

        Assert.Equal(new BlobCopied(BlobOutcome.Mounted, cache), mounted);
        Assert.Equal(new BlobCopied(BlobOutcome.Uploaded, app), pulled);
        Assert.Equal(blob.Content, await TestClients.ReadAllAsync(await local.OpenReadAsync(blob.Descriptor.Digest, CancellationToken.None)));
    }

    private Task<OciLayoutStore> Layout(string name) => OciLayoutStore.OpenOrCreateAsync(Path.Combine(_dir, name), CancellationToken.None);

    private static async Task<TestBlob> StoreAsync(OciLayoutStore store, int size)
    {
        var blob = TestBlob.Of(RandomNumberGenerator.GetBytes(size), MediaTypes.OciLayerGzip);
        using var stream = blob.Open();
        await store.PutAsync(blob.Descriptor, stream, CancellationToken.None);
        return blob;
    }
}

/// <summary>The stream that checks a blob's digest as it is read.</summary>
public sealed class DigestVerifyingStreamTests
{
    [Fact]
    public async Task A_zero_length_read_in_the_middle_is_not_taken_for_the_end_of_the_blob()
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes("a context tar, read entry by entry");
        var stream = new DigestVerifyingStream(new MemoryStream(bytes), Digest.Sha256(bytes), bytes.Length, "blob");

        var first = new byte[5];
        Assert.Equal(5, await stream.ReadAsync(first));
        Assert.Equal(0, await stream.ReadAsync(Memory<byte>.Empty));
        Assert.Equal(0, stream.Read([]));
        await stream.CopyToAsync(Stream.Null);
        Assert.Equal(bytes.Length, stream.BytesRead);

        var tampered = new DigestVerifyingStream(new MemoryStream(bytes), Digest.Sha256("other"u8), bytes.Length, "blob");
        await Assert.ThrowsAsync<DigestMismatchException>(() => tampered.CopyToAsync(Stream.Null));
    }
}
