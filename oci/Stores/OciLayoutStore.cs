using System.Text.Json;

namespace Farm.Oci;

/// <summary>
/// An OCI image-layout directory: <c>oci-layout</c>, <c>index.json</c> and <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>. The
/// embedded farm's blob store, and the format skopeo (<c>oci:DIR:tag</c>) and umoci read.
/// </summary>
/// <remarks>
/// https://github.com/opencontainers/image-spec/blob/main/image-layout.md. A blob is written to a temporary file
/// in the blobs directory (the same file system), verified, and renamed into place, so a reader sees it whole
/// or not at all. index.json is replaced the same way. Updates of index.json are serialised within this process;
/// two processes tagging the same layout at once can lose one tag.
/// </remarks>
public sealed class OciLayoutStore : IBlobStore, IDisposable
{
    /// <summary>The annotation that names a manifest in index.json, read by skopeo and umoci as the tag.</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    private const string LayoutFile = "oci-layout";
    private const string IndexFile = "index.json";
    private static readonly byte[] LayoutContent = "{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray();

    private readonly SemaphoreSlim _indexLock = new(1, 1);

    private OciLayoutStore(string root)
    {
        Root = root;
    }

    /// <summary>The layout directory.</summary>
    public string Root { get; }

    /// <summary>Opens a layout, creating an empty one (oci-layout, index.json, blobs/) when the directory has none.</summary>
    public static async Task<OciLayoutStore> OpenOrCreateAsync(string root, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        var store = new OciLayoutStore(Path.GetFullPath(root));
        try
        {
            Directory.CreateDirectory(Path.Combine(store.Root, "blobs"));
            var layoutPath = Path.Combine(store.Root, LayoutFile);
            if (File.Exists(layoutPath))
            {
                await store.CheckLayoutVersionAsync(layoutPath, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await WriteAtomicallyAsync(layoutPath, LayoutContent, cancellationToken).ConfigureAwait(false);
            }

            if (!File.Exists(Path.Combine(store.Root, IndexFile)))
            {
                await store.WriteIndexAsync(new ImageIndex { Manifests = [] }, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OciLayoutException(store.Root, $"The OCI layout {store.Root} could not be created or opened: {e.Message}. Check the path and its permissions.", e);
        }

        return store;
    }

    public Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken)
    {
        var info = new FileInfo(BlobPath(digest));
        return Task.FromResult(info.Exists ? info.Length : (long?)null);
    }

    public Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            Stream stream = new FileStream(BlobPath(digest), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 81920, useAsync: true);
            return Task.FromResult(stream);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BlobNotFoundException(digest, $"the OCI layout {Root}");
        }
    }

    /// <summary>Opens a blob through a stream that verifies its digest and size as it is read.</summary>
    public async Task<Stream> OpenVerifiedAsync(Descriptor descriptor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        var stream = await OpenReadAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false);
        return new DigestVerifyingStream(stream, descriptor.Digest, descriptor.Size, $"blob {descriptor.Digest} in {Root}");
    }

    public async Task PutAsync(Descriptor descriptor, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        ArgumentNullException.ThrowIfNull(content);
        var final = BlobPath(descriptor.Digest);
        if (File.Exists(final))
        {
            return;
        }

        var dir = Path.GetDirectoryName(final)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".tmp-{Guid.NewGuid():N}");
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                // The caller owns content: the verifying wrapper leaves it open.
                using var verifying = new DigestVerifyingStream(content, descriptor.Digest, descriptor.Size, $"content stored as blob {descriptor.Digest}", leaveOpen: true);
                await verifying.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            // Another writer may have stored the same content meanwhile; content addressing makes either copy right.
            File.Move(temp, final, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DeleteQuietly(temp);
            throw new OciLayoutException(Root, $"Blob {descriptor.Digest} could not be written to {Root}: {e.Message}. Check free space and permissions.", e);
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
    }

    /// <summary>Stores bytes as a blob and returns their descriptor.</summary>
    public async Task<Descriptor> PutBytesAsync(ReadOnlyMemory<byte> content, string mediaType, CancellationToken cancellationToken)
    {
        var descriptor = new Descriptor { MediaType = mediaType, Digest = Digest.Sha256(content.Span), Size = content.Length };
        using var stream = new MemoryStream(content.ToArray(), writable: false);
        await PutAsync(descriptor, stream, cancellationToken).ConfigureAwait(false);
        return descriptor;
    }

    /// <summary>Serialises and stores a manifest; returns its descriptor (not yet tagged).</summary>
    public Task<Descriptor> PutManifestAsync(ImageManifest manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return PutBytesAsync(OciJson.Serialize(manifest), manifest.MediaType ?? MediaTypes.OciManifest, cancellationToken);
    }

    /// <summary>Reads a whole blob, verified, into memory; for manifests and configs.</summary>
    public async Task<byte[]> ReadBytesAsync(Descriptor descriptor, CancellationToken cancellationToken)
    {
        var stream = await OpenVerifiedAsync(descriptor, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }

    public async Task<ImageManifest> ReadManifestAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        OciJson.ParseManifest(await ReadBytesAsync(descriptor, cancellationToken).ConfigureAwait(false));

    public async Task<ImageConfig> ReadConfigAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        ImageConfig.Parse(await ReadBytesAsync(descriptor, cancellationToken).ConfigureAwait(false));

    /// <summary>index.json as it is on disk.</summary>
    public async Task<ImageIndex> ReadIndexAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(Root, IndexFile);
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OciLayoutException(Root, $"{path} could not be read: {e.Message}. Is {Root} an OCI image layout?", e);
        }

        try
        {
            return OciJson.ParseIndex(bytes);
        }
        catch (InvalidManifestException e)
        {
            throw new OciLayoutException(Root, $"{path} is not a valid image index: {e.Message}. Repair or remove the layout.", e);
        }
    }

    /// <summary>
    /// Names <paramref name="manifest"/> <paramref name="tag"/> in index.json (the ref.name annotation), replacing
    /// whatever had that name. The manifest's blob must be stored first.
    /// </summary>
    public async Task TagAsync(string tag, Descriptor manifest, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tag);
        ArgumentNullException.ThrowIfNull(manifest);
        if (await StatAsync(manifest.Digest, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new BlobNotFoundException(manifest.Digest, $"the OCI layout {Root} (store the manifest before tagging it)");
        }

        await _indexLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var index = await ReadIndexAsync(cancellationToken).ConfigureAwait(false);
            var annotations = new Dictionary<string, string>(manifest.Annotations ?? new Dictionary<string, string>(), StringComparer.Ordinal)
            {
                [RefNameAnnotation] = tag,
            };
            var tagged = manifest with { Annotations = annotations };
            if (index.Manifests.Where(m => RefName(m) == tag).ToList() is [var current] && SameEntry(current, tagged))
            {
                // Already so (a warm rebuild names the same image again): index.json is not rewritten.
                return;
            }

            var entries = index.Manifests.Where(m => RefName(m) != tag).Append(tagged).ToList();
            await WriteIndexAsync(index with { Manifests = entries }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _indexLock.Release();
        }
    }

    /// <summary>Removes a tag from index.json (the blobs stay); true when it was there.</summary>
    public async Task<bool> UntagAsync(string tag, CancellationToken cancellationToken)
    {
        await _indexLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var index = await ReadIndexAsync(cancellationToken).ConfigureAwait(false);
            var entries = index.Manifests.Where(m => RefName(m) != tag).ToList();
            if (entries.Count == index.Manifests.Count)
            {
                return false;
            }

            await WriteIndexAsync(index with { Manifests = entries }, cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _indexLock.Release();
        }
    }

    /// <summary>The manifest descriptor tagged <paramref name="tag"/>, or null.</summary>
    public async Task<Descriptor?> ResolveAsync(string tag, CancellationToken cancellationToken)
    {
        var index = await ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        return index.Manifests.LastOrDefault(m => RefName(m) == tag);
    }

    /// <summary>The tags in index.json, in file order.</summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(CancellationToken cancellationToken)
    {
        var index = await ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        return [.. index.Manifests.Select(RefName).OfType<string>()];
    }

    /// <summary>The manifest tagged <paramref name="tag"/>; an index entry is followed to its linux/amd64 manifest.</summary>
    public async Task<(Descriptor Descriptor, ImageManifest Manifest)> ReadTaggedManifestAsync(string tag, CancellationToken cancellationToken)
    {
        var descriptor = await ResolveAsync(tag, cancellationToken).ConfigureAwait(false)
            ?? throw new OciLayoutException(Root, $"The OCI layout {Root} has no image tagged '{tag}'. Tags there: {string.Join(", ", await ListTagsAsync(cancellationToken).ConfigureAwait(false))}.");
        if (MediaTypes.IsIndex(descriptor.MediaType))
        {
            var index = OciJson.ParseIndex(await ReadBytesAsync(descriptor, cancellationToken).ConfigureAwait(false));
            descriptor = index.FindManifest(Platform.LinuxAmd64)
                ?? throw new OciLayoutException(Root, $"The image tagged '{tag}' in {Root} has no linux/amd64 manifest. Use an image built for linux/amd64.");
        }

        return (descriptor, await ReadManifestAsync(descriptor, cancellationToken).ConfigureAwait(false));
    }

    private static string? RefName(Descriptor descriptor) =>
        descriptor.Annotations is { } a && a.TryGetValue(RefNameAnnotation, out var name) ? name : null;

    private string BlobPath(Digest digest)
    {
        if (digest.IsEmpty)
        {
            throw new ArgumentException("An empty digest names no blob.", nameof(digest));
        }

        return Path.Combine(Root, "blobs", digest.Algorithm, digest.Encoded);
    }

    private async Task CheckLayoutVersionAsync(string layoutPath, CancellationToken cancellationToken)
    {
        var bytes = await File.ReadAllBytesAsync(layoutPath, cancellationToken).ConfigureAwait(false);
        string? version = null;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            version = doc.RootElement.TryGetProperty("imageLayoutVersion", out var v) ? v.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new OciLayoutException(Root, $"{layoutPath} is not valid JSON ({e.Message}). Is {Root} an OCI image layout?", e);
        }

        if (version is null || !version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw new OciLayoutException(Root, $"{layoutPath} declares imageLayoutVersion '{version}'; Farm reads 1.x layouts. Convert it with skopeo copy.");
        }
    }

    /// <summary>
    /// Whether two index entries say the same (record equality, annotations by content); lists compare by reference,
    /// so an equal entry may be taken for different, which only costs a rewrite.
    /// </summary>
    private static bool SameEntry(Descriptor a, Descriptor b) =>
        a with { Annotations = null } == b with { Annotations = null }
        && (a.Annotations ?? new Dictionary<string, string>()).OrderBy(p => p.Key, StringComparer.Ordinal)
            .SequenceEqual((b.Annotations ?? new Dictionary<string, string>()).OrderBy(p => p.Key, StringComparer.Ordinal));

    private Task WriteIndexAsync(ImageIndex index, CancellationToken cancellationToken) =>
        WriteAtomicallyAsync(Path.Combine(Root, IndexFile), OciJson.Serialize(index), cancellationToken);

    private static async Task WriteAtomicallyAsync(string path, byte[] content, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await File.WriteAllBytesAsync(temp, content, cancellationToken).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
    }

    private static void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // A leftover temp file is harmless (hidden, never read) and the original failure is what matters.
        }
    }

    public void Dispose() => _indexLock.Dispose();

    public override string ToString() => $"OCI layout {Root}";
}
