using Farm.Contracts;
using Farm.Dockerfile.Graph;
using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Oci.Stores;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Pins every image a build names (<c>FROM</c>, <c>COPY --from</c>) to a manifest digest once per build, from the
/// local farm's image store or from its registry, and makes its layers readable from the build's cache store.
/// </summary>
internal sealed partial class BaseImageResolver(ILogger logger)
{
    /// <summary>
    /// The images the stages to build use, each once per platform it is needed for: the platform of the stage that
    /// names it (a <c>FROM --platform=$BUILDPLATFORM</c> stage takes the builder's image from an index, the others the
    /// target's).
    /// </summary>
    public static IEnumerable<(string Reference, string Platform)> ImagesOf(BuildGraph graph) =>
        graph.StagesToBuild
            .SelectMany(s => (s.BaseKind == StageBaseKind.Image && s.BaseImage is { } b ? [b] : Array.Empty<string>()).Concat(s.ImageReferences).Select(r => (r, s.Platform)))
            .Distinct();

    /// <summary>The key of an image pinned for one platform, in a build's table of resolved images.</summary>
    public static string Key(string reference, string platform) => platform + " " + reference;

    /// <summary>Pins an image to its manifest digest and makes its layers readable from the cache store.</summary>
    /// <param name="buildId">The build, for the log.</param>
    /// <param name="reference">The image as the Dockerfile names it.</param>
    /// <param name="platform">The platform whose manifest an index is followed to; a local image is used only when it is for it.</param>
    /// <param name="cacheStore">Where its layers are copied for the workers.</param>
    /// <param name="localImages">The local farm's image store, looked in first; null on a cluster.</param>
    /// <param name="clientFor">The client of a registry host, with the build's credentials.</param>
    /// <param name="cancellationToken">Cancels the pull.</param>
    public async Task<ResolvedImage> ResolveAsync(Guid buildId, string reference, Platform platform, IBlobStore cacheStore, ILocalImageSource? localImages, Func<string, RegistryClient> clientFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(platform);
        if (!ImageReference.TryParse(reference, out var parsed))
        {
            throw new BaseImageUnavailableException(reference, "it is not a valid image reference");
        }

        string? elsewhere = null;
        if (localImages is not null && await localImages.TryGetAsync(reference, cancellationToken).ConfigureAwait(false) is { } local)
        {
            if (IsFor(local.Config, platform))
            {
                return Resolved(buildId, reference, local.Digest, local.Manifest, local.Config);
            }

            // The local store names one image per name: one for another platform sends this one to the registry.
            elsewhere = $"the local image {reference} is for {local.Config.Os}/{local.Config.Architecture}, not {platform}";
        }

        PulledImage pulled;
        ImageConfig config;
        var client = clientFor(parsed.Registry);
        try
        {
            pulled = await client.PullManifestAsync(parsed, platform, cancellationToken).ConfigureAwait(false);
            config = await client.GetConfigAsync(parsed.Repository, pulled.Manifest.Config, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FarmException or HttpRequestException)
        {
            throw new BaseImageUnavailableException(reference, elsewhere is null ? e.Message : $"{elsewhere}, and from its registry: {e.Message}", e);
        }

        foreach (var layer in pulled.Manifest.Layers)
        {
            await BlobCopy.CopyBlobAsync(new RegistryBlobStore(client, parsed.Repository), cacheStore, layer, cancellationToken).ConfigureAwait(false);
        }

        return Resolved(buildId, reference, pulled.Digest, pulled.Manifest, config);
    }

    /// <summary>Whether a config is for <paramref name="platform"/>: its os and architecture (a config names no variant reliably).</summary>
    internal static bool IsFor(ImageConfig config, Platform platform) =>
        string.Equals(config.Os, platform.Os, StringComparison.Ordinal)
        && string.Equals(Platform.TryParse(config.Architecture)?.Architecture ?? config.Architecture, platform.Architecture, StringComparison.Ordinal);

    private ResolvedImage Resolved(Guid buildId, string reference, Digest digest, ImageManifest manifest, ImageConfig config)
    {
        if (config.DiffIds.Count != manifest.Layers.Count)
        {
            throw new BaseImageUnavailableException(reference, $"its manifest lists {manifest.Layers.Count} layers but its config {config.DiffIds.Count} diff_ids");
        }

        var layers = manifest.Layers
            .Zip(config.DiffIds, (l, d) => new LayerRef(l.Digest.ToString(), d.ToString(), l.MediaType, l.Size))
            .ToList();
        LogBaseResolved(logger, buildId, reference, digest);
        return new ResolvedImage(
            digest,
            config,
            manifest,
            layers,
            new BaseImageConfig { Env = config.Env, WorkingDir = config.WorkingDir, User = config.User, Shell = StringList(config.Config["Shell"]), OnBuild = StringList(config.Config["OnBuild"]) ?? [] });
    }

    private static List<string>? StringList(System.Text.Json.Nodes.JsonNode? node) =>
        node is System.Text.Json.Nodes.JsonArray array ? [.. array.Select(n => (string?)n ?? string.Empty)] : null;

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId}: base image {Reference} pinned to {Digest}")]
    private static partial void LogBaseResolved(ILogger logger, Guid buildId, string reference, Digest digest);
}

/// <summary>An image pinned for one build: its digest, config, manifest, layers and what a stage inherits from it.</summary>
internal sealed record ResolvedImage(Digest Digest, ImageConfig Config, ImageManifest Manifest, IReadOnlyList<LayerRef> Layers, BaseImageConfig BaseConfig);
