using Farm.Oci.Images;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Oci.Registry;

/// <summary>
/// One blob of one push destination (<c>host/repository</c>), for progress display; <c>MountedFrom</c> names the
/// repository a mounted blob came from.
/// </summary>
public sealed record BlobPushed(string Repository, Descriptor Blob, BlobOutcome Outcome, string? MountedFrom = null);

/// <summary>What a push did: the manifest digest, the references now pointing at it and every blob's outcome.</summary>
public sealed record ImagePushResult(Digest Digest, IReadOnlyList<string> References, IReadOnlyList<BlobPushed> Blobs);

/// <summary>
/// Pushes an image (one the coordinator assembled, or one from the local image store) to one or more tags. Every
/// blob of every destination is in place before the first manifest is written, so a failure leaves no tag pointing
/// at a partial image.
/// </summary>
/// <remarks>
/// <para>Per layer, <see cref="BlobCopy"/>: nothing when the destination has it; else a cross-repository mount from a
/// blob source that is a repository of the same registry (the cache, the base image's repository, a destination
/// pushed earlier in the same call); else a streamed copy from the first source that has it. Then the config, then
/// the manifest, byte for byte as given (so the pushed digest is the image's), under every tag.</para>
/// <para>https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push</para>
/// </remarks>
public sealed partial class ImagePusher
{
    private const int BlobParallelism = 3;

    private readonly Func<string, RegistryClient> _clientFor;
    private readonly ILogger _logger;

    /// <summary>Takes the shared client for a registry host (e.g. <c>BlobStoreLocator.ClientFor</c>), which holds its credentials.</summary>
    public ImagePusher(Func<string, RegistryClient> clientFor, ILogger<ImagePusher>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(clientFor);
        _clientFor = clientFor;
        _logger = logger ?? NullLogger<ImagePusher>.Instance;
    }

    /// <summary>
    /// Pushes <paramref name="image"/> to every reference in <paramref name="tags"/> (a bare repository gets
    /// <c>latest</c>), reading layers from <paramref name="sources"/> (in order of preference) and telling
    /// <paramref name="progress"/> about each blob as it is settled.
    /// </summary>
    public Task<ImagePushResult> PushAsync(
        ImageContent image,
        IReadOnlyList<string> tags,
        IReadOnlyList<IBlobStore> sources,
        IProgress<BlobPushed>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        return PushCoreAsync([image], image.ManifestBytes, image.ManifestDescriptor.MediaType, image.Digest, tags, sources, progress, cancellationToken);
    }

    /// <summary>
    /// Pushes a multi-platform image to every reference in <paramref name="tags"/>: each platform's blobs and its
    /// manifest (by digest, untagged) to every destination repository, then the index under each tag, last, so a tag
    /// never names an index whose images are not all there.
    /// </summary>
    public Task<ImagePushResult> PushIndexAsync(
        ImageIndexContent index,
        IReadOnlyList<string> tags,
        IReadOnlyList<IBlobStore> sources,
        IProgress<BlobPushed>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(index);
        return PushCoreAsync([.. index.Images.Select(i => i.Image)], index.IndexBytes, index.IndexDescriptor.MediaType, index.Digest, tags, sources, progress, cancellationToken);
    }

    /// <summary>
    /// Every destination repository gets the images' blobs (in parallel, each once) and configs, and with several images
    /// each image's manifest by digest; only then is <paramref name="top"/> (the image's manifest, or the index) tagged in
    /// each, last, so a tag never names content that is not all there.
    /// </summary>
    private async Task<ImagePushResult> PushCoreAsync(
        IReadOnlyList<ImageContent> images,
        ReadOnlyMemory<byte> top,
        string topMediaType,
        Digest topDigest,
        IReadOnlyList<string> tags,
        IReadOnlyList<IBlobStore> sources,
        IProgress<BlobPushed>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tags);
        ArgumentNullException.ThrowIfNull(sources);
        var targets = tags.Select(ParseTarget).ToList();
        if (targets.Count == 0)
        {
            throw new InvalidPushTargetException(string.Empty, "no tag was given");
        }

        // Platforms often share layers (a COPY of the same files on scratch): each blob once per destination.
        var layers = images.Count == 1 ? images[0].Manifest.Layers : [.. images.SelectMany(i => i.Manifest.Layers).DistinctBy(l => l.Digest)];
        var outcomes = new List<BlobPushed>();
        var candidates = sources.ToList();
        foreach (var (registry, repository) in targets.Select(t => (t.Registry, t.Repository)).Distinct())
        {
            var target = new RegistryBlobStore(_clientFor(registry), repository);
            var results = new BlobPushed[layers.Count];
            await Parallel.ForEachAsync(
                Enumerable.Range(0, results.Length),
                new ParallelOptions { MaxDegreeOfParallelism = BlobParallelism, CancellationToken = cancellationToken },
                async (i, ct) =>
                {
                    var layer = layers[i];
                    var copied = await BlobCopy.CopyBlobAsync(candidates, target, layer, ct).ConfigureAwait(false);
                    results[i] = new BlobPushed(target.ToString(), layer, copied.Outcome, copied.Outcome == BlobOutcome.Mounted ? (copied.From as RegistryBlobStore)?.Repository : null);
                    Log.BlobSettled(_logger, layer.Digest, target, copied.Outcome, copied.From);
                    progress?.Report(results[i]);
                }).ConfigureAwait(false);
            outcomes.AddRange(results);

            foreach (var image in images)
            {
                var config = await PushConfigAsync(target, image, cancellationToken).ConfigureAwait(false);
                progress?.Report(config);
                outcomes.Add(config);
                if (images.Count > 1)
                {
                    await target.Client.PushManifestAsync(repository, image.Digest.ToString(), image.ManifestBytes, image.ManifestDescriptor.MediaType, cancellationToken).ConfigureAwait(false);
                }
            }

            // A later destination in the same registry mounts from this one.
            candidates.Add(target);
        }

        // Only now that every destination holds every blob do tags move: the top manifest goes last.
        var references = new List<string>();
        foreach (var target in targets)
        {
            var digest = await _clientFor(target.Registry)
                .PushManifestAsync(target.Repository, target.Reference, top, topMediaType, cancellationToken)
                .ConfigureAwait(false);
            Log.ManifestTagged(_logger, digest, target);
            references.Add(target.ToString());
        }

        return new ImagePushResult(topDigest, references, outcomes);
    }

    /// <summary>The config is sent from the image's bytes: an assembled image's config is in no store yet.</summary>
    private async Task<BlobPushed> PushConfigAsync(RegistryBlobStore target, ImageContent image, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(image.ConfigBytes.ToArray(), writable: false);
        var outcome = await target.Client.PushBlobAsync(target.Repository, image.ConfigDescriptor, content, mountFrom: null, cancellationToken).ConfigureAwait(false);
        Log.BlobSettled(_logger, image.ConfigDescriptor.Digest, target, outcome, null);
        return new BlobPushed(target.ToString(), image.ConfigDescriptor, outcome);
    }

    private static ImageReference ParseTarget(string tag)
    {
        if (!ImageReference.TryParse(tag, out var reference))
        {
            throw new InvalidPushTargetException(tag, "it is not an image reference");
        }

        if (reference.Digest is not null)
        {
            throw new InvalidPushTargetException(tag, "a digest cannot be pushed to, only a tag");
        }

        // A bare repository gets "latest", as docker push does.
        return reference.Tag is null ? reference.WithTag("latest") : reference;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4110, Level = LogLevel.Debug, Message = "Blob {Digest} in {Repository}: {Outcome} (from {Source})")]
        public static partial void BlobSettled(ILogger logger, Digest digest, object repository, BlobOutcome outcome, object? source);

        [LoggerMessage(EventId = 4111, Level = LogLevel.Information, Message = "Pushed {Digest} as {Reference}")]
        public static partial void ManifestTagged(ILogger logger, Digest digest, ImageReference reference);
    }
}
