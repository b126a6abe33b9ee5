using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Oci.Images;

/// <summary>
/// Reads the images of an unpacked docker-archive or oci-archive and stores their blobs (verified) in the layout;
/// returns each image's manifest and the names the archive gives it. Naming happens in the caller, under its lock.
/// </summary>
/// <remarks>
/// docker-archive: <c>manifest.json</c> = [{Config, RepoTags, Layers}] (https://github.com/moby/moby/blob/master/image/spec/v1.2.md);
/// layers may be plain tars (docker save) or gzip. oci-archive: an image layout
/// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md); the name comes from
/// <c>io.containerd.image.name</c>, else from a ref.name that is a whole reference.
/// </remarks>
internal sealed class ArchiveLoader(OciLayoutStore layout, string directory, string source)
{
    private const string ContainerdName = "io.containerd.image.name";

    public async Task<IReadOnlyList<(Descriptor Descriptor, ImageManifest Manifest, IReadOnlyList<string> Names)>> LoadDockerArchiveAsync(CancellationToken cancellationToken)
    {
        JsonArray entries;
        try
        {
            entries = JsonNode.Parse(await File.ReadAllBytesAsync(PathOf("manifest.json"), cancellationToken).ConfigureAwait(false)) as JsonArray
                ?? throw new InvalidImageArchiveException(source, "manifest.json is not a JSON array");
        }
        catch (JsonException e)
        {
            throw new InvalidImageArchiveException(source, $"manifest.json is not valid JSON: {e.Message}", e);
        }

        var result = new List<(Descriptor, ImageManifest, IReadOnlyList<string>)>();
        foreach (var entry in entries.OfType<JsonObject>())
        {
            var configPath = (string?)entry["Config"] ?? throw new InvalidImageArchiveException(source, "a manifest.json entry has no Config");
            var configBytes = await File.ReadAllBytesAsync(PathOf(configPath), cancellationToken).ConfigureAwait(false);
            var diffIds = ImageConfig.Parse(configBytes).DiffIds;
            var layerPaths = entry["Layers"] is JsonArray l ? l.Select(x => (string?)x ?? string.Empty).ToList() : [];
            if (layerPaths.Count != diffIds.Count)
            {
                throw new InvalidImageArchiveException(source, $"{configPath} lists {diffIds.Count} diff_ids but manifest.json {layerPaths.Count} layers");
            }

            var layers = new List<Descriptor>();
            for (var i = 0; i < layerPaths.Count; i++)
            {
                layers.Add(await StoreLayerAsync(PathOf(layerPaths[i]), diffIds[i], cancellationToken).ConfigureAwait(false));
            }

            var config = await layout.PutBytesAsync(configBytes, MediaTypes.OciConfig, cancellationToken).ConfigureAwait(false);
            var manifest = new ImageManifest { MediaType = MediaTypes.OciManifest, Config = config, Layers = layers };
            var descriptor = await layout.PutManifestAsync(manifest, cancellationToken).ConfigureAwait(false);
            var names = entry["RepoTags"] is JsonArray tags ? tags.Select(t => (string?)t).OfType<string>().ToList() : [];
            result.Add((descriptor, manifest, names));
        }

        return result;
    }

    public async Task<IReadOnlyList<(Descriptor Descriptor, ImageManifest Manifest, IReadOnlyList<string> Names)>> LoadOciArchiveAsync(CancellationToken cancellationToken)
    {
        using var archive = await OciLayoutStore.OpenOrCreateAsync(directory, cancellationToken).ConfigureAwait(false);
        var index = await archive.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<(Descriptor, ImageManifest, IReadOnlyList<string>)>();
        foreach (var entry in index.Manifests)
        {
            var descriptor = entry with { Annotations = null };
            if (MediaTypes.IsIndex(entry.MediaType))
            {
                var inner = OciJson.ParseIndex(await archive.ReadBytesAsync(descriptor, cancellationToken).ConfigureAwait(false));
                descriptor = (inner.FindManifest(Platform.LinuxAmd64)
                    ?? throw new InvalidImageArchiveException(source, $"the index {entry.Digest} has no linux/amd64 manifest")) with { Annotations = null, Platform = null };
            }

            var manifestBytes = await archive.ReadBytesAsync(descriptor, cancellationToken).ConfigureAwait(false);
            var manifest = OciJson.ParseManifest(manifestBytes);
            foreach (var blob in manifest.Layers.Append(manifest.Config))
            {
                await BlobCopy.CopyBlobAsync(archive, layout, blob, cancellationToken).ConfigureAwait(false);
            }

            var stored = await layout.PutBytesAsync(manifestBytes, descriptor.MediaType, cancellationToken).ConfigureAwait(false);
            result.Add((stored, manifest, NamesOf(entry)));
        }

        return result;
    }

    private static List<string> NamesOf(Descriptor entry)
    {
        if (entry.Annotations is not { } annotations)
        {
            return [];
        }

        if (annotations.TryGetValue(ContainerdName, out var name))
        {
            return [name];
        }

        // A bare tag ("1", "latest") names no repository; only a whole reference can name a local image.
        return annotations.TryGetValue(OciLayoutStore.RefNameAnnotation, out var refName) && refName.Contains('/', StringComparison.Ordinal) ? [refName] : [];
    }

    /// <summary>Stores a layer file as it is (plain tar or gzip), after checking its uncompressed digest is the diff_id.</summary>
    private async Task<Descriptor> StoreLayerAsync(string path, Digest diffId, CancellationToken cancellationToken)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);
        await using (file.ConfigureAwait(false))
        {
            var gzip = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
            file.Position = 0;
            var digest = await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false);
            file.Position = 0;
            var uncompressed = digest;
            if (gzip)
            {
                var inflating = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
                await using (inflating.ConfigureAwait(false))
                {
                    uncompressed = await Digest.Sha256Async(inflating, cancellationToken).ConfigureAwait(false);
                }

                file.Position = 0;
            }

            if (uncompressed != diffId)
            {
                throw new InvalidImageArchiveException(source, $"layer {Path.GetRelativePath(directory, path)} has diff_id {uncompressed} but the config says {diffId}; the archive is corrupt");
            }

            var descriptor = new Descriptor { MediaType = gzip ? MediaTypes.OciLayerGzip : MediaTypes.OciLayerTar, Digest = digest, Size = file.Length };
            await layout.PutAsync(descriptor, file, cancellationToken).ConfigureAwait(false);
            return descriptor;
        }
    }

    private string PathOf(string relative)
    {
        var full = Path.GetFullPath(Path.Combine(directory, relative));
        if (!full.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
        {
            throw new InvalidImageArchiveException(source, $"'{relative}' is not a file inside the archive");
        }

        return full;
    }
}
