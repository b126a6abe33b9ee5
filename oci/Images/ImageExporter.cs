using System.Formats.Tar;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Oci;
using Farm.Oci.IO;
using Farm.Oci.Layers;
using Farm.Oci.Registry;

namespace Farm.Oci.Images;

/// <summary>
/// Writes an assembled image somewhere other than a registry: an OCI layout (tar or directory), a docker-archive
/// tar, or the unpacked root filesystem. Blobs are read from the given sources and verified against their digests.
/// </summary>
/// <remarks>
/// <para>OCI layout: https://github.com/opencontainers/image-spec/blob/main/image-layout.md. buildx writes it as a tar
/// with the <c>org.opencontainers.image.ref.name</c> (tag) and <c>io.containerd.image.name</c> annotations in index.json.</para>
/// <para>docker-archive: <c>manifest.json</c> with Config, RepoTags and Layers. Layers are written uncompressed, as
/// <c>docker save</c> writes them: every reader (docker load of any version, podman load and skopeo through
/// containers/image) accepts that, while gzip layers are only read by newer ones. Files sit at
/// <c>blobs/sha256/&lt;hex&gt;</c> (layers named by diff_id), the paths Docker 25+ uses.</para>
/// <para>Tars are deterministic: ustar entries in sorted order, owner 0, fixed modes, the image's created time.</para>
/// </remarks>
public static class ImageExporter
{
    private const string ContainerdNameAnnotation = "io.containerd.image.name";

    /// <summary>Writes <paramref name="image"/> as <paramref name="output"/> says; <paramref name="tags"/> name it unless the output has <c>name=</c>.</summary>
    public static Task WriteAsync(ImageContent image, OutputSpec output, IReadOnlyList<string> tags, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(tags);
        var names = output.Names ?? tags;
        return output.Type switch
        {
            OutputType.Oci when output.Tar => WriteOciArchiveAsync(image, output.Destination, (names.Count > 0 ? names[0] : null), sources, cancellationToken),
            OutputType.Oci => WriteOciLayoutAsync(image, output.Destination, (names.Count > 0 ? names[0] : null), sources, cancellationToken),
            OutputType.Docker => WriteDockerArchiveAsync(image, output.Destination, names, sources, cancellationToken),
            _ => WriteRootfsAsync(image, output.Destination, sources, cancellationToken),
        };
    }

    /// <summary>
    /// Exports a multi-platform image: <c>type=oci</c> writes the index and every platform's image into one layout
    /// (directory or tar), the index tagged; the other types hold one image and are refused (FARM4320).
    /// </summary>
    /// <exception cref="MultiPlatformOutputException">The output type holds one platform's image only (FARM4320).</exception>
    public static async Task WriteAsync(ImageIndexContent index, OutputSpec output, IReadOnlyList<string> tags, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(tags);
        if (output.Type != OutputType.Oci)
        {
            throw new MultiPlatformOutputException(output.Type.ToString().ToLowerInvariant(), index.Images.Count);
        }

        var names = output.Names ?? tags;
        var name = names.Count > 0 ? names[0] : null;
        if (!output.Tar)
        {
            await WriteOciLayoutAsync(index, output.Destination, name, sources, cancellationToken).ConfigureAwait(false);
            return;
        }

        var staging = StagingDirectory(output.Destination);
        try
        {
            await WriteOciLayoutAsync(index, staging, name, sources, cancellationToken).ConfigureAwait(false);
            await WriteTarAsync(staging, output.Destination, index.Images[0].Image, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            DeleteDirectory(staging);
        }
    }

    /// <summary>Adds a multi-platform image to the OCI layout <paramref name="directory"/>: every image's blobs and manifest, then the index, tagged.</summary>
    public static async Task WriteOciLayoutAsync(ImageIndexContent index, string directory, string? name, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        using var layout = await OciLayoutStore.OpenOrCreateAsync(Path.GetFullPath(directory), cancellationToken).ConfigureAwait(false);
        foreach (var (_, image) in index.Images)
        {
            foreach (var layer in image.Manifest.Layers)
            {
                await BlobCopy.CopyBlobAsync(sources, layout, layer, cancellationToken).ConfigureAwait(false);
            }

            await layout.PutBytesAsync(image.ConfigBytes, image.ConfigDescriptor.MediaType, cancellationToken).ConfigureAwait(false);
            await layout.PutBytesAsync(image.ManifestBytes, image.ManifestDescriptor.MediaType, cancellationToken).ConfigureAwait(false);
        }

        await layout.PutBytesAsync(index.IndexBytes, index.IndexDescriptor.MediaType, cancellationToken).ConfigureAwait(false);
        var (tag, annotations) = RefName(name);
        await layout.TagAsync(tag, index.IndexDescriptor with { Annotations = annotations }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds the image to the OCI layout directory <paramref name="directory"/> (created when missing) and tags it.</summary>
    public static async Task WriteOciLayoutAsync(ImageContent image, string directory, string? name, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        using var layout = await OciLayoutStore.OpenOrCreateAsync(Path.GetFullPath(directory), cancellationToken).ConfigureAwait(false);
        foreach (var layer in image.Manifest.Layers)
        {
            await BlobCopy.CopyBlobAsync(sources, layout, layer, cancellationToken).ConfigureAwait(false);
        }

        await layout.PutBytesAsync(image.ConfigBytes, image.ConfigDescriptor.MediaType, cancellationToken).ConfigureAwait(false);
        await layout.PutBytesAsync(image.ManifestBytes, image.ManifestDescriptor.MediaType, cancellationToken).ConfigureAwait(false);
        var (tag, annotations) = RefName(name);
        await layout.TagAsync(tag, image.ManifestDescriptor with { Annotations = annotations }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the image as an OCI layout tar at <paramref name="path"/> (replaced atomically).</summary>
    public static async Task WriteOciArchiveAsync(ImageContent image, string path, string? name, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var staging = StagingDirectory(path);
        try
        {
            await WriteOciLayoutAsync(image, staging, name, sources, cancellationToken).ConfigureAwait(false);
            await WriteTarAsync(staging, path, image, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            DeleteDirectory(staging);
        }
    }

    /// <summary>Writes a docker-archive tar at <paramref name="path"/> for <c>docker load</c> / <c>podman load</c>.</summary>
    public static async Task WriteDockerArchiveAsync(ImageContent image, string path, IReadOnlyList<string> repoTags, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(repoTags);
        var staging = StagingDirectory(path);
        try
        {
            var blobs = Directory.CreateDirectory(Path.Combine(staging, "blobs", "sha256")).FullName;
            var layerPaths = new List<string>();
            foreach (var (layer, diffId) in image.LayersWithDiffIds)
            {
                var file = Path.Combine(blobs, diffId.Encoded);
                if (!File.Exists(file))
                {
                    await WriteUncompressedAsync(layer, diffId, file, sources, path, cancellationToken).ConfigureAwait(false);
                }

                layerPaths.Add($"blobs/sha256/{diffId.Encoded}");
            }

            var configPath = $"blobs/sha256/{image.ConfigDescriptor.Digest.Encoded}";
            await File.WriteAllBytesAsync(Path.Combine(staging, configPath), image.ConfigBytes.ToArray(), cancellationToken).ConfigureAwait(false);
            var entry = new JsonObject
            {
                ["Config"] = configPath,
                ["RepoTags"] = new JsonArray([.. repoTags.Select(t => (JsonNode?)NormalizeTag(t))]),
                ["Layers"] = new JsonArray([.. layerPaths.Select(l => (JsonNode?)l)]),
            };
            await File.WriteAllBytesAsync(Path.Combine(staging, "manifest.json"), OciJson.ToBytes(new JsonArray(entry)), cancellationToken).ConfigureAwait(false);
            await WriteTarAsync(staging, path, image, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            DeleteDirectory(staging);
        }
    }

    /// <summary>Unpacks every layer, bottom first, into <paramref name="directory"/>: the image's root filesystem.</summary>
    public static async Task WriteRootfsAsync(ImageContent image, string directory, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);

        // Owners can only be set by root; anyone else gets a tree they own, as an unprivileged `docker cp` would.
        var options = new LayerApplyOptions { PreserveOwners = Environment.IsPrivilegedProcess, AllowDevices = Environment.IsPrivilegedProcess };
        foreach (var (layer, diffId) in image.LayersWithDiffIds)
        {
            var content = await BlobCopy.OpenVerifiedAsync(sources, layer, directory, cancellationToken).ConfigureAwait(false);
            await using (content.ConfigureAwait(false))
            {
                var result = await LayerReader.ApplyAsync(content, directory, options with { Compression = MediaTypes.CompressionOf(layer.MediaType) }, cancellationToken).ConfigureAwait(false);
                if (result.DiffId != diffId)
                {
                    throw new OutputWriteException(directory, $"layer {layer.Digest} unpacked to diff_id {result.DiffId}, but the config says {diffId}; the image is inconsistent. Rebuild without the cache.");
                }
            }
        }
    }

    private static async Task WriteUncompressedAsync(Descriptor layer, Digest diffId, string file, IReadOnlyList<IBlobStore> sources, string destination, CancellationToken cancellationToken)
    {
        var content = await BlobCopy.OpenVerifiedAsync(sources, layer, destination, cancellationToken).ConfigureAwait(false);
        await using (content.ConfigureAwait(false))
        {
            var tar = new HashingReadStream(LayerReader.OpenDecompressed(content, MediaTypes.CompressionOf(layer.MediaType)));
            await using (tar.ConfigureAwait(false))
            {
                var output = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true);
                await using (output.ConfigureAwait(false))
                {
                    await tar.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                }

                var actual = tar.Digest();
                if (actual != diffId)
                {
                    throw new OutputWriteException(destination, $"Layer {layer.Digest} decompresses to {actual}, but the config says diff_id {diffId}; the image is inconsistent. Rebuild without the cache.");
                }
            }
        }
    }

    /// <summary>Tars <paramref name="root"/> into <paramref name="path"/>: written beside it, then renamed, so a reader never sees half a tar.</summary>
    private static async Task WriteTarAsync(string root, string path, ImageContent image, CancellationToken cancellationToken)
    {
        var time = image.Config.Created ?? DateTimeOffset.UnixEpoch;
        var temp = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                var writer = new TarWriter(file, TarEntryFormat.Ustar, leaveOpen: true);
                await using (writer.ConfigureAwait(false))
                {
                    foreach (var entry in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                    {
                        var name = Path.GetRelativePath(root, entry).Replace(Path.DirectorySeparatorChar, '/');
                        if (Directory.Exists(entry))
                        {
                            await writer.WriteEntryAsync(Entry(TarEntryType.Directory, name + "/", time, 0b111_101_101), cancellationToken).ConfigureAwait(false);
                            continue;
                        }

                        var data = File.OpenRead(entry);
                        await using (data.ConfigureAwait(false))
                        {
                            var tarEntry = Entry(TarEntryType.RegularFile, name, time, 0b110_100_100);
                            tarEntry.DataStream = data;
                            await writer.WriteEntryAsync(tarEntry, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }

                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp);
            throw new OutputWriteException(path, $"could not write {path}: {e.Message}. Check the directory exists, is writable and has free space.", e);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static UstarTarEntry Entry(TarEntryType type, string name, DateTimeOffset time, int mode) => new(type, name)
    {
        ModificationTime = time,
        Mode = (UnixFileMode)mode,
        Uid = 0,
        Gid = 0,
    };

    /// <summary>The layout's ref.name (the tag, as buildx writes it) and the full name for containerd.</summary>
    private static (string Tag, IReadOnlyDictionary<string, string>? Annotations) RefName(string? name)
    {
        if (name is null)
        {
            return ("latest", null);
        }

        var reference = ParseName(name);
        return (reference.Tag ?? "latest", new Dictionary<string, string> { [ContainerdNameAnnotation] = reference.ToString() });
    }

    private static string NormalizeTag(string tag)
    {
        var reference = ParseName(tag);
        return (reference.Tag is null ? reference.WithTag("latest") : reference).ToString();
    }

    private static ImageReference ParseName(string name) =>
        ImageReference.TryParse(name, out var reference) && reference.Digest is null
            ? reference
            : throw new InvalidOutputException($"name={name}", "the image name must be a tag reference such as farm/app:1");

    /// <summary>A scratch directory beside the destination, so the final rename stays on one filesystem.</summary>
    private static string StagingDirectory(string destination)
    {
        var full = Path.GetFullPath(destination);
        var parent = Path.GetDirectoryName(full) ?? throw new InvalidOutputException(destination, "the destination has no parent directory");
        Directory.CreateDirectory(parent);
        return Directory.CreateDirectory(Path.Combine(parent, $".{Path.GetFileName(full)}.farm-{Guid.NewGuid():N}")).FullName;
    }

    private static void DeleteDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
