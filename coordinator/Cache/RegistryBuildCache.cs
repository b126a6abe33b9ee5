using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.Registry;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Cache;

/// <summary>
/// A build cache exported to a registry (<c>--cache-to type=registry</c>) and imported from one
/// (<c>--cache-from</c>), so that a farm without the exporting farm's Redis (a laptop, another cluster) reuses its
/// steps (docs/architecture.md, "Build caches in registries").
/// </summary>
/// <remarks>
/// <para>The export is one OCI image manifest (image-spec 1.1, "Guidelines for Artifact Usage"): <c>artifactType</c>
/// <see cref="ArtifactType"/>; as config a JSON blob of mediaType <see cref="ConfigMediaType"/> mapping each cache key to
/// its result (<see cref="BuildCacheConfig"/>); as layers every distinct layer blob the entries name, so the registry
/// holds them under the reference and its garbage collection keeps them. Only keys, layer descriptors and dates: no
/// build argument, command, worker name, tenant or credential.
/// https://github.com/opencontainers/image-spec/blob/main/manifest.md</para>
/// <para>Keys are the action cache's own, content hashes of a step's inputs with the farm's salt (docs/architecture.md,
/// "Cache keys"): two farms share entries when their salts are equal (both unset, the default), whatever their
/// tenants; the explain key (an HMAC key) is not part of any cache key.</para>
/// </remarks>
public static class BuildCacheArtifact
{
    /// <summary>The <c>artifactType</c> of an exported build cache.</summary>
    public const string ArtifactType = "application/vnd.farm.buildcache.v1";

    /// <summary>The mediaType of its config: the key to result mapping.</summary>
    public const string ConfigMediaType = "application/vnd.farm.buildcache.config.v1+json";

    /// <summary>The format version in the config (<c>"v"</c>).</summary>
    public const int Version = 1;

    /// <summary>The largest config read back (a million entries are about 250 MB; a cache of one build is far below).</summary>
    public const long MaxConfigBytes = 64L << 20;

    /// <summary>The config's bytes for <paramref name="entries"/>, sorted by key so the same cache is the same blob.</summary>
    public static byte[] SerializeConfig(IEnumerable<ExportedCacheEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var config = new BuildCacheConfig(
            Version,
            [.. entries.DistinctBy(e => e.Key, StringComparer.Ordinal).OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => new BuildCacheConfigEntry(
                e.Key,
                e.Layer is { } l ? new BuildCacheConfigLayer(l.Digest, l.DiffId, l.MediaType, l.Size) : null,
                e.Created))]);
        return JsonSerializer.SerializeToUtf8Bytes(config, BuildCacheJsonContext.Default.BuildCacheConfig);
    }

    /// <summary>The entries of a config blob; null when it is not a config of this version.</summary>
    public static IReadOnlyList<ExportedCacheEntry>? ParseConfig(ReadOnlySpan<byte> bytes)
    {
        BuildCacheConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(bytes, BuildCacheJsonContext.Default.BuildCacheConfig);
        }
        catch (JsonException)
        {
            return null;
        }

        if (config is null || config.V != Version || config.Entries is null)
        {
            return null;
        }

        var entries = new List<ExportedCacheEntry>(config.Entries.Count);
        foreach (var e in config.Entries)
        {
            if (e is null || e.Key is null || !Digest.TryParse(e.Key, out var key) || key.Algorithm != "sha256")
            {
                return null;
            }

            if (e.Layer is { } l && (!Digest.TryParse(l.Digest, out _) || !Digest.TryParse(l.DiffId, out _) || l.Size < 0 || !MediaTypes.IsLayer(l.MediaType)))
            {
                return null;
            }

            entries.Add(new ExportedCacheEntry(e.Key, e.Layer is { } s ? new LayerRef(s.Digest, s.DiffId, s.MediaType, s.Size) : null, e.Created));
        }

        return entries;
    }
}

/// <summary>One exported action-cache entry: the key, its layer (null: the step changed nothing), when it was built.</summary>
/// <remarks>The date travels so that an image assembled from an imported cache has the same history dates, and so the same digest, as the exporting farm's.</remarks>
public sealed record ExportedCacheEntry(string Key, LayerRef? Layer, DateTimeOffset Created);

/// <summary>What a build imported with <c>--cache-from</c>: entries by key, each with the registry repository holding its layer.</summary>
public sealed class ImportedBuildCache
{
    private readonly Dictionary<string, (ExportedCacheEntry Entry, RegistryBlobStore Source)> _entries = new(StringComparer.Ordinal);

    /// <summary>None: a build without <c>--cache-from</c>.</summary>
    public static ImportedBuildCache Empty { get; } = new();

    public int Count => _entries.Count;

    /// <summary>Adds the entries of one reference; a key already imported from an earlier <c>--cache-from</c> keeps that one (the first wins).</summary>
    public void Add(IEnumerable<ExportedCacheEntry> entries, RegistryBlobStore source)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var entry in entries)
        {
            _entries.TryAdd(entry.Key, (entry, source));
        }
    }

    /// <summary>The entry under <paramref name="key"/> and where its layer is, or false.</summary>
    public bool TryGet(string key, out ExportedCacheEntry entry, out RegistryBlobStore source)
    {
        if (_entries.TryGetValue(key, out var found))
        {
            (entry, source) = found;
            return true;
        }

        (entry, source) = (null!, null!);
        return false;
    }
}

/// <summary>
/// Imports and exports build caches in registries (see <see cref="BuildCacheArtifact"/>) with the registry clients of
/// the build (its tenant's or its passed credentials, else the farm's own Docker config), never putting a credential in
/// the artifact, a log line or an event.
/// </summary>
public sealed partial class RegistryBuildCache(ILogger logger)
{
    private static readonly byte[] _emptyBlob = "{}"u8.ToArray();
    private static readonly Descriptor _emptyDescriptor = new() { MediaType = MediaTypes.OciEmpty, Digest = Digest.Sha256(_emptyBlob), Size = _emptyBlob.Length };

    private readonly ILogger _logger = logger ?? throw new ArgumentNullException(nameof(logger));

    /// <summary>
    /// Reads one <c>--cache-from</c> reference. Any failure (no such manifest, a refusal, not a farm build cache) is a
    /// <see cref="CacheImportSkippedException"/> the caller reports as a warning, as buildx goes on without the cache.
    /// </summary>
    /// <returns>The entries and the repository that holds their layers.</returns>
    /// <exception cref="CacheImportSkippedException">The reference cannot be used (FARM4350).</exception>
    public static async Task<(IReadOnlyList<ExportedCacheEntry> Entries, RegistryBlobStore Source)> ImportAsync(CacheSpec spec, Func<string, RegistryClient> clientFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(clientFor);
        var reference = spec.Reference;
        var client = clientFor(reference.Registry);
        try
        {
            var raw = await client.GetManifestAsync(reference.Repository, reference.Reference, cancellationToken).ConfigureAwait(false);
            if (!MediaTypes.IsManifest(raw.MediaType))
            {
                throw new CacheImportSkippedException(reference.ToString(), $"it is a {raw.MediaType}, not a farm build cache ({BuildCacheArtifact.ArtifactType}); a BuildKit cache is not readable by Farm");
            }

            var manifest = OciJson.ParseManifest(raw.Content.Span);
            if (manifest.Config.MediaType != BuildCacheArtifact.ConfigMediaType)
            {
                throw new CacheImportSkippedException(reference.ToString(), $"its config is a {manifest.Config.MediaType}, not a farm build cache ({BuildCacheArtifact.ConfigMediaType}); a BuildKit cache or an image is not readable as one");
            }

            if (manifest.Config.Size > BuildCacheArtifact.MaxConfigBytes)
            {
                throw new CacheImportSkippedException(reference.ToString(), $"its config is {manifest.Config.Size} bytes, more than the {BuildCacheArtifact.MaxConfigBytes} Farm reads");
            }

            var bytes = await client.GetBlobBytesAsync(reference.Repository, manifest.Config, cancellationToken).ConfigureAwait(false);
            var entries = BuildCacheArtifact.ParseConfig(bytes)
                ?? throw new CacheImportSkippedException(reference.ToString(), $"its config is not a farm build cache of version {BuildCacheArtifact.Version}");
            return (entries, new RegistryBlobStore(client, reference.Repository));
        }
        catch (ManifestNotFoundException e)
        {
            throw new CacheImportSkippedException(reference.ToString(), "there is no such manifest (nothing was exported there yet)", e);
        }
        catch (FarmException e) when (e is not CacheImportSkippedException)
        {
            throw new CacheImportSkippedException(reference.ToString(), e.Message, e);
        }
        catch (JsonException e)
        {
            throw new CacheImportSkippedException(reference.ToString(), "its manifest is not valid JSON", e);
        }
    }

    /// <summary>
    /// Puts an imported entry's layer into the build's store (a mount when both are repositories of one registry, else a
    /// copy); false, logged with FARM4352, when it cannot: the step then runs.
    /// </summary>
    public async Task<bool> FetchLayerAsync(Guid buildId, string key, LayerRef layer, RegistryBlobStore source, IBlobStore target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        try
        {
            await BlobCopy.CopyBlobAsync(source, target, Descriptor(layer), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (FarmException e)
        {
            LogLayerUnavailable(_logger, new CacheImportLayerUnavailableException(layer.Digest, source.ToString(), e), buildId, key);
            return false;
        }
    }

    /// <summary>
    /// Exports <paramref name="entries"/> under <paramref name="spec"/>'s reference: each layer put into its repository
    /// (mounted from <paramref name="store"/> when it is a repository of the same registry, else copied), the config, then
    /// the manifest under the tag.
    /// </summary>
    /// <returns>The manifest's digest and how many distinct layers it names.</returns>
    /// <exception cref="CacheExportFailedException">A blob or the manifest could not be pushed (FARM4351).</exception>
    public static async Task<(Digest Digest, int Layers)> ExportAsync(CacheSpec spec, IReadOnlyList<ExportedCacheEntry> entries, IBlobStore store, Func<string, RegistryClient> clientFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(clientFor);
        var reference = spec.Reference;
        try
        {
            var target = new RegistryBlobStore(clientFor(reference.Registry), reference.Repository);
            var layers = entries.Select(e => e.Layer).OfType<LayerRef>().DistinctBy(l => l.Digest, StringComparer.Ordinal).Select(Descriptor).ToList();
            foreach (var layer in layers)
            {
                await BlobCopy.CopyBlobAsync(store, target, layer, cancellationToken).ConfigureAwait(false);
            }

            var config = BuildCacheArtifact.SerializeConfig(entries);
            var configDescriptor = new Descriptor { MediaType = BuildCacheArtifact.ConfigMediaType, Digest = Digest.Sha256(config), Size = config.Length };
            await PutSmallAsync(target, configDescriptor, config, cancellationToken).ConfigureAwait(false);
            if (layers.Count == 0)
            {
                // image-spec: an artifact without content names the empty descriptor rather than no layer.
                await PutSmallAsync(target, _emptyDescriptor, _emptyBlob, cancellationToken).ConfigureAwait(false);
            }

            var manifest = new ImageManifest
            {
                MediaType = MediaTypes.OciManifest,
                ArtifactType = BuildCacheArtifact.ArtifactType,
                Config = configDescriptor,
                Layers = layers.Count == 0 ? [_emptyDescriptor] : layers,
            };
            var digest = await target.Client.PushManifestAsync(reference.Repository, reference.Reference, manifest, cancellationToken).ConfigureAwait(false);
            return (digest, layers.Count);
        }
        catch (FarmException e)
        {
            throw new CacheExportFailedException(reference.ToString(), e);
        }
    }

    private static Descriptor Descriptor(LayerRef layer) => new() { MediaType = layer.MediaType, Digest = Digest.Parse(layer.Digest), Size = layer.Size };

    private static async Task PutSmallAsync(RegistryBlobStore target, Descriptor descriptor, byte[] content, CancellationToken cancellationToken)
    {
        if (await target.StatAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        using var stream = new MemoryStream(content, writable: false);
        await target.PutAsync(descriptor, stream, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the layer of imported cache entry {CacheKey} could not be fetched; the step runs")]
    private static partial void LogLayerUnavailable(ILogger logger, Exception exception, Guid buildId, string cacheKey);
}

internal sealed record BuildCacheConfigLayer(
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("diff_id")] string DiffId,
    [property: JsonPropertyName("media_type")] string MediaType,
    [property: JsonPropertyName("size")] long Size);

internal sealed record BuildCacheConfigEntry(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("layer")] BuildCacheConfigLayer? Layer,
    [property: JsonPropertyName("created")] DateTimeOffset Created);

/// <summary>The config of an exported build cache: <c>{"v":1,"entries":[{"key","layer":{"digest","diff_id","media_type","size"}|null,"created"}]}</c>.</summary>
internal sealed record BuildCacheConfig(
    [property: JsonPropertyName("v")] int V,
    [property: JsonPropertyName("entries")] IReadOnlyList<BuildCacheConfigEntry>? Entries);

[JsonSerializable(typeof(BuildCacheConfig))]
internal sealed partial class BuildCacheJsonContext : JsonSerializerContext;

/// <summary>FARM4350: a <c>--cache-from</c> reference could not be used; the build goes on without it.</summary>
public sealed class CacheImportSkippedException(string reference, string reason, Exception? innerException = null)
    : FarmException(FarmErrorCodes.CacheImportSkipped, $"The build cache {reference} was not imported: {reason}. The build goes on without it; export one there with --cache-to type=registry,ref={reference}.", innerException);

/// <summary>FARM4351: exporting the build cache failed; the build fails, as buildx's.</summary>
public sealed class CacheExportFailedException(string reference, Exception innerException)
    : FarmException(FarmErrorCodes.CacheExportFailed, $"The build cache could not be exported to {reference}: {innerException.Message}. The image itself was built (and pushed or named as asked); check that the registry accepts pushes to that repository with the build's credentials, or add ignore-error=true to --cache-to to make this a warning.", innerException);

/// <summary>FARM4352: an imported entry's layer could not be copied into the farm's store; the step runs instead.</summary>
public sealed class CacheImportLayerUnavailableException(string digest, string source, Exception innerException)
    : FarmException(FarmErrorCodes.CacheImportLayerUnavailable, $"Layer {digest} of an imported build cache could not be copied from {source}: {innerException.Message}. The step runs instead.", innerException);
