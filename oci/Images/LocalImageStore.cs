using System.IO.Compression;
using Farm.Oci.IO;
using Farm.Oci.Registry;

namespace Farm.Oci.Images;

/// <summary>
/// The images a user has on this machine: one OCI image layout (<c>$FARM_STATE_DIR/images</c>), each image named by
/// its normalized reference (<c>docker.io/library/busybox:latest</c>) in the <c>org.opencontainers.image.ref.name</c>
/// annotation of its index.json entry, so skopeo (<c>oci:DIR:NAME</c>) and umoci read the store as it is.
/// </summary>
/// <remarks>
/// <para>Layout: https://github.com/opencontainers/image-spec/blob/main/image-layout.md. Blobs are written first
/// (content addressed, so concurrent writers agree), then names change under an exclusive file lock on
/// <c>.farm-images.lock</c>, so two farm processes never lose each other's tags.</para>
/// <para>An image without a name (an untagged <c>farm import</c>, an archive entry without one) is kept under its
/// manifest digest as the ref.name, which farm images shows as &lt;none&gt;.</para>
/// <para>Removal is mark-and-sweep: the blobs of a manifest that lost its last name are deleted unless another
/// entry of index.json still reaches them.</para>
/// </remarks>
public sealed class LocalImageStore : IDisposable
{
    private const string LockFile = ".farm-images.lock";
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(60);

    private readonly OciLayoutStore _layout;

    private LocalImageStore(OciLayoutStore layout)
    {
        _layout = layout;
    }

    /// <summary>The layout directory.</summary>
    public string Root => _layout.Root;

    /// <summary>The underlying layout, as a blob source for exporters.</summary>
    public OciLayoutStore Layout => _layout;

    /// <summary><c>$FARM_STATE_DIR</c>, else <c>$XDG_DATA_HOME/farm</c>, else <c>~/.local/share/farm</c>.</summary>
    public static string DefaultStateDirectory()
    {
        if (Environment.GetEnvironmentVariable("FARM_STATE_DIR") is { Length: > 0 } state)
        {
            return state;
        }

        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(data, "farm");
    }

    /// <summary>Opens (creating when missing) the store under <paramref name="stateDirectory"/> (default <see cref="DefaultStateDirectory"/>).</summary>
    public static async Task<LocalImageStore> OpenAsync(string? stateDirectory, CancellationToken cancellationToken)
    {
        var root = Path.Combine(stateDirectory ?? DefaultStateDirectory(), "images");
        var layout = await OciLayoutStore.OpenOrCreateAsync(root, cancellationToken).ConfigureAwait(false);
        return new LocalImageStore(layout);
    }

    /// <summary>The name an image is stored under: <c>busybox</c> becomes <c>docker.io/library/busybox:latest</c>.</summary>
    public static string NormalizeName(string name)
    {
        if (!ImageReference.TryParse(name, out var reference))
        {
            throw new InvalidImageNameException(name, "it is not an image reference");
        }

        if (reference.Digest is not null)
        {
            throw new InvalidImageNameException(name, "a digest cannot be a local name, only a tag");
        }

        return (reference.Tag is null ? reference.WithTag("latest") : reference).ToString();
    }

    /// <summary>Every name in the store with the image it points at, in index.json order; unnamed images have null repository and tag.</summary>
    public async Task<IReadOnlyList<ImageSummary>> ListAsync(CancellationToken cancellationToken)
    {
        var index = await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<ImageSummary>();
        var cache = new Dictionary<Digest, (ImageManifest Manifest, ImageConfig Config)>();
        foreach (var entry in index.Manifests)
        {
            if (!cache.TryGetValue(entry.Digest, out var image))
            {
                var manifest = await _layout.ReadManifestAsync(entry, cancellationToken).ConfigureAwait(false);
                image = (manifest, await _layout.ReadConfigAsync(manifest.Config, cancellationToken).ConfigureAwait(false));
                cache[entry.Digest] = image;
            }

            var (repository, tag) = SplitName(RefName(entry));
            var size = image.Manifest.Config.Size + image.Manifest.Layers.Sum(l => l.Size);
            var variant = (string?)image.Config.Root["variant"];
            rows.Add(new ImageSummary(repository, tag, image.Manifest.Config.Digest, entry.Digest, image.Config.Created, size, $"{image.Config.Os}/{image.Config.Architecture}" + (variant is null ? string.Empty : "/" + variant)));
        }

        return rows;
    }

    /// <summary>
    /// The image a name (normalized as <see cref="NormalizeName"/>) or an id prefix (config digest, with or without
    /// <c>sha256:</c>) designates; <see cref="NoSuchImageException"/> when none does.
    /// </summary>
    public async Task<LocalImage> GetAsync(string nameOrId, CancellationToken cancellationToken)
    {
        var entry = await FindEntryAsync(nameOrId, cancellationToken).ConfigureAwait(false);
        return await LoadImageAsync(entry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Names the image <paramref name="source"/> designates <paramref name="target"/> as well (replacing what had that name).</summary>
    public async Task<string> TagAsync(string source, string target, CancellationToken cancellationToken)
    {
        var name = NormalizeName(target);
        var entry = await FindEntryAsync(source, cancellationToken).ConfigureAwait(false);
        using (await LockAsync(cancellationToken).ConfigureAwait(false))
        {
            await _layout.TagAsync(name, Unnamed(entry), cancellationToken).ConfigureAwait(false);
        }

        return name;
    }

    /// <summary>
    /// Removes a name; given an id, removes every name of that image. Blobs no remaining entry reaches are deleted.
    /// </summary>
    public Task<ImageRemoval> RemoveAsync(string nameOrId, CancellationToken cancellationToken) =>
        RemoveAsync(nameOrId, usedBy: null, force: false, cancellationToken);

    /// <summary>
    /// As <see cref="RemoveAsync(string, CancellationToken)"/>, refusing (<see cref="ImageInUseException"/>) to delete an
    /// image that <paramref name="usedBy"/> (given an image id, the name of a container using it, or null) says a
    /// container uses, as docker does. With <paramref name="force"/> the names go and the image stays, unnamed, for
    /// its containers.
    /// </summary>
    public async Task<ImageRemoval> RemoveAsync(string nameOrId, Func<Digest, string?>? usedBy, bool force, CancellationToken cancellationToken)
    {
        using (await LockAsync(cancellationToken).ConfigureAwait(false))
        {
            var index = await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
            var exact = TryNormalize(nameOrId) is { } normalized ? index.Manifests.LastOrDefault(m => RefName(m) == normalized) : null;
            List<string> names;
            Descriptor target;
            if (exact is not null)
            {
                target = exact;
                names = [RefName(exact)!];
            }
            else
            {
                target = await FindByIdAsync(index, nameOrId, cancellationToken).ConfigureAwait(false) ?? throw new NoSuchImageException(nameOrId);
                names = [.. index.Manifests.Where(m => m.Digest == target.Digest).Select(RefName).OfType<string>().Distinct(StringComparer.Ordinal)];
            }

            var manifest = await _layout.ReadManifestAsync(target, cancellationToken).ConfigureAwait(false);
            var lastNames = !index.Manifests.Any(m => m.Digest == target.Digest && !names.Contains(RefName(m) ?? string.Empty, StringComparer.Ordinal));
            var container = lastNames ? usedBy?.Invoke(manifest.Config.Digest) : null;
            if (container is not null && !force)
            {
                throw new ImageInUseException(nameOrId, container, manifest.Config.Digest);
            }

            if (container is not null && !names.Any(IsDangling))
            {
                // Kept for the container that uses it, under its digest as dangling images are.
                await _layout.TagAsync(target.Digest.ToString(), Unnamed(target), cancellationToken).ConfigureAwait(false);
            }

            foreach (var name in names.Where(n => container is null || !IsDangling(n)))
            {
                await _layout.UntagAsync(name, cancellationToken).ConfigureAwait(false);
            }

            var remaining = await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
            var untagged = names.Where(n => !IsDangling(n)).ToList();
            if (remaining.Manifests.Any(m => m.Digest == target.Digest))
            {
                return new ImageRemoval(untagged, []);
            }

            await SweepAsync(remaining, [target.Digest, manifest.Config.Digest, .. manifest.Layers.Select(l => l.Digest)], cancellationToken).ConfigureAwait(false);
            return new ImageRemoval(untagged, [manifest.Config.Digest]);
        }
    }

    /// <summary>Every blob an image in the store needs: its manifest, config and layers (what a build cache prune must keep).</summary>
    public async Task<IReadOnlySet<Digest>> ImageBlobsAsync(CancellationToken cancellationToken)
    {
        var index = await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        return await ReachableAsync(index, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes those of <paramref name="candidates"/> that no image reaches (checked again under the store's lock, so a
    /// concurrent build naming an image keeps its layers) and that are not in <paramref name="keep"/>; returns the
    /// bytes freed. The local farm's build cache prune calls it with the layers of the entries it removed.
    /// </summary>
    public async Task<long> DeleteUnreferencedAsync(IEnumerable<Digest> candidates, IReadOnlySet<Digest> keep, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(keep);
        using (await LockAsync(cancellationToken).ConfigureAwait(false))
        {
            var reachable = await ReachableAsync(await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            long freed = 0;
            foreach (var digest in candidates.Distinct().Where(d => !reachable.Contains(d) && !keep.Contains(d)))
            {
                if (await _layout.StatAsync(digest, cancellationToken).ConfigureAwait(false) is { } size)
                {
                    File.Delete(Path.Combine(Root, "blobs", digest.Algorithm, digest.Encoded));
                    freed += size;
                }
            }

            return freed;
        }
    }

    /// <summary>
    /// Pulls <paramref name="name"/> (its manifest for <see cref="RegistryClientOptions.Platform"/>, linux/amd64 by
    /// default, when it is an index) with its config and layers,
    /// each verified against its digest, and names it in the store.
    /// </summary>
    public async Task<LocalImage> PullAsync(string name, ICredentialProvider? credentials, RegistryClientOptions? options, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        if (!ImageReference.TryParse(name, out var reference))
        {
            throw new InvalidImageNameException(name, "it is not an image reference");
        }

        if (reference.Tag is null && reference.Digest is null)
        {
            reference = reference.WithTag("latest");
        }

        using var client = new RegistryClient(reference.Registry, options, credentials);
        var pulled = await client.PullManifestAsync(reference, cancellationToken).ConfigureAwait(false);
        var remote = new RegistryBlobStore(client, reference.Repository);
        foreach (var layer in pulled.Manifest.Layers)
        {
            var copied = await BlobCopy.CopyBlobAsync(remote, _layout, layer, cancellationToken).ConfigureAwait(false);
            progress?.Report($"{layer.Digest.Encoded[..12]}: {(copied.Outcome == BlobOutcome.Exists ? "Already exists" : "Pull complete")}");
        }

        await BlobCopy.CopyBlobAsync(remote, _layout, pulled.Manifest.Config, cancellationToken).ConfigureAwait(false);
        var manifest = await _layout.PutBytesAsync(pulled.Raw.Content, pulled.Raw.MediaType, cancellationToken).ConfigureAwait(false);
        var localName = reference.Tag is not null ? reference.WithTag(reference.Tag).ToString() : reference.ToString();
        await CommitAsync(manifest, pulled.Manifest, [localName], cancellationToken).ConfigureAwait(false);
        return await GetAsync(localName, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pushes the image named <paramref name="name"/> to the registry and repository its name says; returns the manifest digest.</summary>
    public async Task<Digest> PushAsync(string name, ICredentialProvider? credentials, RegistryClientOptions? options, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        var image = await GetAsync(name, cancellationToken).ConfigureAwait(false);
        var reference = ImageReference.Parse(TryNormalize(name) is { } n && image.Names.Contains(n) ? n : image.Names.FirstOrDefault(x => !IsDangling(x)) ?? throw new InvalidImageNameException(name, "the image has no name to push to; name it with farm tag first"));
        using var client = new RegistryClient(reference.Registry, options, credentials);
        var pushed = await new ImagePusher(_ => client)
            .PushAsync(image, [reference.ToString()], [_layout], progress is null ? null : new PushProgress(progress), cancellationToken)
            .ConfigureAwait(false);
        return pushed.Digest;
    }

    /// <summary>
    /// <c>docker import</c>: a root filesystem tar (plain or gzip) becomes a one-layer image, stored gzip-compressed,
    /// with <paramref name="config"/> (its <c>-c</c> changes applied by the caller; null for an empty linux/amd64 one)
    /// as its config.
    /// </summary>
    public async Task<LocalImage> ImportAsync(Stream rootfs, string source, string? name, ImageConfig? config, string? message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rootfs);
        var localName = name is null ? null : NormalizeName(name);
        config = config?.Clone() ?? ImageConfig.CreateEmpty();
        var blobs = Directory.CreateDirectory(Path.Combine(Root, "blobs", "sha256")).FullName;
        var temp = Path.Combine(blobs, $".tmp-import-{Guid.NewGuid():N}");
        try
        {
            Digest diffId;
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                var tar = new HashingReadStream(await OpenTarAsync(rootfs, source, cancellationToken).ConfigureAwait(false));
                await using (tar.ConfigureAwait(false))
                {
                    var gzip = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true);
                    await using (gzip.ConfigureAwait(false))
                    {
                        await tar.CopyToAsync(gzip, cancellationToken).ConfigureAwait(false);
                    }

                    diffId = tar.Digest();
                }

                file.Position = 0;
                var digest = await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false);
                var layer = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = digest, Size = file.Length };
                file.Position = 0;
                await _layout.PutAsync(layer, file, cancellationToken).ConfigureAwait(false);

                var now = DateTimeOffset.UtcNow;
                config.Created = now;
                config.AddLayer(diffId, new HistoryEntry { Created = now, CreatedBy = $"farm import {source}", Comment = message ?? $"Imported from {source}" });
                return await AddAsync(config, [layer], localName, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// Writes <paramref name="config"/> and a manifest over <paramref name="layers"/> (blobs already in <see cref="Layout"/>)
    /// and names the image <paramref name="name"/>, or keeps it unnamed under its manifest digest when null.
    /// </summary>
    public async Task<LocalImage> AddAsync(ImageConfig config, IReadOnlyList<Descriptor> layers, string? name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(layers);
        var localName = name is null ? null : NormalizeName(name);
        var configDescriptor = await _layout.PutBytesAsync(config.ToBytes(), MediaTypes.OciConfig, cancellationToken).ConfigureAwait(false);
        var manifest = new ImageManifest { MediaType = MediaTypes.OciManifest, Config = configDescriptor, Layers = [.. layers] };
        var manifestDescriptor = await _layout.PutManifestAsync(manifest, cancellationToken).ConfigureAwait(false);
        var names = localName is null ? [manifestDescriptor.Digest.ToString()] : new[] { localName };
        await CommitAsync(manifestDescriptor, manifest, names, cancellationToken).ConfigureAwait(false);
        return await GetAsync(names[0], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds every image of a docker-archive or oci-archive tar (plain or gzip) to the store under the names it
    /// carries; returns them (one per image).
    /// </summary>
    public async Task<IReadOnlyList<LocalImage>> LoadAsync(Stream archive, string source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(archive);
        var staging = Directory.CreateDirectory(Path.Combine(Root, $".load-{Guid.NewGuid():N}")).FullName;
        try
        {
            var tar = await OpenTarAsync(archive, source, cancellationToken).ConfigureAwait(false);
            await using (tar.ConfigureAwait(false))
            {
                await System.Formats.Tar.TarFile.ExtractToDirectoryAsync(tar, staging, overwriteFiles: true, cancellationToken).ConfigureAwait(false);
            }

            var loader = new ArchiveLoader(_layout, staging, source);
            var loaded = File.Exists(Path.Combine(staging, "manifest.json"))
                ? await loader.LoadDockerArchiveAsync(cancellationToken).ConfigureAwait(false)
                : File.Exists(Path.Combine(staging, "index.json"))
                    ? await loader.LoadOciArchiveAsync(cancellationToken).ConfigureAwait(false)
                    : throw new InvalidImageArchiveException(source, "neither manifest.json (docker-archive) nor index.json (oci-archive) is in the archive. Write it with farm save, docker save or skopeo copy.");
            var images = new List<LocalImage>();
            foreach (var (descriptor, manifest, names) in loaded)
            {
                var normalized = names.Select(TryNormalize).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
                if (normalized.Count == 0)
                {
                    normalized.Add(descriptor.Digest.ToString());
                }

                await CommitAsync(descriptor, manifest, normalized, cancellationToken).ConfigureAwait(false);
                images.Add(await GetAsync(normalized[0], cancellationToken).ConfigureAwait(false));
            }

            return images;
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>
    /// Adds one image of the OCI image layout directory <paramref name="directory"/> to the store (its blobs verified)
    /// under <paramref name="name"/>: the manifest or index entry whose digest is <paramref name="selector"/>, or whose
    /// <c>org.opencontainers.image.ref.name</c> is it (a tag), or the layout's only image when it is null. What
    /// <c>farm build --build-context NAME=oci-layout://PATH[@DIGEST]</c> reads.
    /// </summary>
    /// <exception cref="InvalidImageArchiveException">The directory is not a layout, or holds no such image, or more than one without a selector.</exception>
    public async Task<LocalImage> LoadLayoutAsync(string directory, string? selector, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!File.Exists(Path.Combine(directory, "index.json")) || !File.Exists(Path.Combine(directory, "oci-layout")))
        {
            throw new InvalidImageArchiveException(directory, "it is not an OCI image layout (no index.json and oci-layout file); write one with skopeo copy ... oci:DIR:TAG or farm build --output type=oci");
        }

        IReadOnlyList<Descriptor> entries;
        using (var source = await OciLayoutStore.OpenOrCreateAsync(directory, cancellationToken).ConfigureAwait(false))
        {
            entries = (await source.ReadIndexAsync(cancellationToken).ConfigureAwait(false)).Manifests;
        }

        var chosen = selector is null
            ? (entries.Count == 1 ? 0 : throw new InvalidImageArchiveException(directory, $"it holds {entries.Count} images; name one with @sha256:DIGEST or :TAG"))
            : entries.ToList().FindIndex(e => e.Digest.ToString() == selector || RefName(e) == selector);
        if (chosen < 0)
        {
            throw new InvalidImageArchiveException(directory, $"no image of its index.json has the digest or tag '{selector}'");
        }

        // The loader reads every entry of the index in order: the chosen one is at its place.
        var loaded = await new ArchiveLoader(_layout, directory, directory).LoadOciArchiveAsync(cancellationToken).ConfigureAwait(false);
        var (descriptor, manifest, _) = loaded[chosen];
        var normalized = NormalizeName(name);
        await CommitAsync(descriptor, manifest, [normalized], cancellationToken).ConfigureAwait(false);
        return await GetAsync(normalized, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Stores an image built elsewhere (its layers already in <see cref="Layout"/>, as the embedded farm writes them):
    /// puts its config and manifest bytes as they are and names it <paramref name="names"/>, or by its manifest digest
    /// (an unnamed image) when there is none.
    /// </summary>
    public async Task<LocalImage> AddAsync(ReadOnlyMemory<byte> configBytes, string configMediaType, ReadOnlyMemory<byte> manifestBytes, string manifestMediaType, IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(names);
        var normalized = names.Select(NormalizeName).Distinct(StringComparer.Ordinal).ToList();
        await _layout.PutBytesAsync(configBytes, configMediaType, cancellationToken).ConfigureAwait(false);
        var descriptor = await _layout.PutBytesAsync(manifestBytes, manifestMediaType, cancellationToken).ConfigureAwait(false);
        if (normalized.Count == 0)
        {
            normalized.Add(descriptor.Digest.ToString());
        }

        await CommitAsync(descriptor, OciJson.ParseManifest(manifestBytes.Span), normalized, cancellationToken).ConfigureAwait(false);
        return await GetAsync(normalized[0], cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _layout.Dispose();

    public override string ToString() => $"local image store {Root}";

    internal static string? RefName(Descriptor descriptor) =>
        descriptor.Annotations is { } a && a.TryGetValue(OciLayoutStore.RefNameAnnotation, out var name) ? name : null;

    private static bool IsDangling(string name) => Digest.TryParse(name, out _);

    private static string? TryNormalize(string name)
    {
        try
        {
            return NormalizeName(name);
        }
        catch (InvalidImageNameException)
        {
            return null;
        }
    }

    private static (string? Repository, string? Tag) SplitName(string? name)
    {
        if (name is null || IsDangling(name) || !ImageReference.TryParse(name, out var reference))
        {
            return (null, null);
        }

        return ($"{reference.Registry}/{reference.Repository}", reference.Tag);
    }

    private static Descriptor Unnamed(Descriptor entry) => new() { MediaType = entry.MediaType, Digest = entry.Digest, Size = entry.Size };

    private async Task<Descriptor> FindEntryAsync(string nameOrId, CancellationToken cancellationToken)
    {
        var index = await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        if (TryNormalize(nameOrId) is { } name && index.Manifests.LastOrDefault(m => RefName(m) == name) is { } named)
        {
            return named;
        }

        return await FindByIdAsync(index, nameOrId, cancellationToken).ConfigureAwait(false) ?? throw new NoSuchImageException(nameOrId);
    }

    /// <summary>Matches an id prefix against config digests (the image id) and manifest digests (for unnamed images).</summary>
    private async Task<Descriptor?> FindByIdAsync(ImageIndex index, string id, CancellationToken cancellationToken)
    {
        var prefix = id.StartsWith("sha256:", StringComparison.Ordinal) ? id["sha256:".Length..] : id;
        if (prefix.Length == 0 || !prefix.All(char.IsAsciiHexDigitLower))
        {
            return null;
        }

        var matches = new Dictionary<Digest, Descriptor>();
        foreach (var entry in index.Manifests)
        {
            if (matches.ContainsKey(entry.Digest))
            {
                continue;
            }

            var manifest = await _layout.ReadManifestAsync(entry, cancellationToken).ConfigureAwait(false);
            if (manifest.Config.Digest.Encoded.StartsWith(prefix, StringComparison.Ordinal) || entry.Digest.Encoded.StartsWith(prefix, StringComparison.Ordinal))
            {
                matches[entry.Digest] = entry;
            }
        }

        return matches.Count switch
        {
            0 => null,
            1 => matches.Values.Single(),
            _ => throw new AmbiguousImageIdException(id, [.. matches.Keys.Select(d => d.Encoded[..12])]),
        };
    }

    private async Task<LocalImage> LoadImageAsync(Descriptor entry, CancellationToken cancellationToken)
    {
        var manifestBytes = await _layout.ReadBytesAsync(Unnamed(entry), cancellationToken).ConfigureAwait(false);
        var manifest = OciJson.ParseManifest(manifestBytes);
        var configBytes = await _layout.ReadBytesAsync(manifest.Config, cancellationToken).ConfigureAwait(false);
        var index = await _layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false);
        return new LocalImage
        {
            ManifestDescriptor = Unnamed(entry),
            Manifest = manifest,
            ManifestBytes = manifestBytes,
            Config = ImageConfig.Parse(configBytes),
            ConfigBytes = configBytes,
            Names = [.. index.Manifests.Where(m => m.Digest == entry.Digest).Select(RefName).OfType<string>().Distinct(StringComparer.Ordinal)],
        };
    }

    /// <summary>Names a stored manifest, after checking under the lock that a concurrent removal did not sweep its blobs.</summary>
    private async Task CommitAsync(Descriptor manifestDescriptor, ImageManifest manifest, IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        using (await LockAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var blob in manifest.Layers.Append(manifest.Config).Append(manifestDescriptor))
            {
                if (await _layout.StatAsync(blob.Digest, cancellationToken).ConfigureAwait(false) is null)
                {
                    throw new BlobNotFoundException(blob.Digest, $"{this} (a concurrent farm rmi removed it; run the command again)");
                }
            }

            foreach (var name in names)
            {
                await _layout.TagAsync(name, Unnamed(manifestDescriptor), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Deletes the candidate blobs that no entry of <paramref name="index"/> reaches any more.</summary>
    private async Task SweepAsync(ImageIndex index, IReadOnlyList<Digest> candidates, CancellationToken cancellationToken)
    {
        var reachable = await ReachableAsync(index, cancellationToken).ConfigureAwait(false);
        foreach (var digest in candidates.Where(d => !reachable.Contains(d)))
        {
            File.Delete(Path.Combine(Root, "blobs", digest.Algorithm, digest.Encoded));
        }
    }

    /// <summary>The manifests, configs and layers the entries of <paramref name="index"/> reach.</summary>
    private async Task<HashSet<Digest>> ReachableAsync(ImageIndex index, CancellationToken cancellationToken)
    {
        var reachable = new HashSet<Digest>();
        foreach (var entry in index.Manifests)
        {
            reachable.Add(entry.Digest);
            var manifest = await _layout.ReadManifestAsync(Unnamed(entry), cancellationToken).ConfigureAwait(false);
            reachable.Add(manifest.Config.Digest);
            reachable.UnionWith(manifest.Layers.Select(l => l.Digest));
        }

        return reachable;
    }

    /// <summary>An exclusive lock on the store across processes (flock through FileShare.None), waited for with back-off.</summary>
    private async Task<IDisposable> LockAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(Root, LockFile);
        var started = DateTime.UtcNow;
        var delay = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow - started < LockTimeout)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
            }
            catch (IOException e)
            {
                throw new ImageStoreBusyException(path, LockTimeout, e);
            }
        }
    }

    /// <summary>The tar inside <paramref name="input"/>: gzip is recognised by its magic bytes, so stdin works too.</summary>
    private static async Task<Stream> OpenTarAsync(Stream input, string source, CancellationToken cancellationToken)
    {
        var head = new byte[2];
        var read = await input.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            throw new InvalidImageArchiveException(source, "it is empty; expected a tar (plain or gzip)");
        }

        Stream whole = new PrefixedStream(head.AsMemory(0, read), input);
        return head[0] == 0x1f && read == 2 && head[1] == 0x8b ? new GZipStream(whole, CompressionMode.Decompress) : whole;
    }

    /// <summary>docker push's lines: one per blob as it is settled.</summary>
    private sealed class PushProgress(IProgress<string> lines) : IProgress<BlobPushed>
    {
        public void Report(BlobPushed value) => lines.Report(value.Outcome switch
        {
            BlobOutcome.Exists => $"{value.Blob.Digest.Encoded[..12]}: Layer already exists",
            BlobOutcome.Mounted => $"{value.Blob.Digest.Encoded[..12]}: Mounted from {value.MountedFrom}",
            _ => $"{value.Blob.Digest.Encoded[..12]}: Pushed",
        });
    }
}
