using Farm.Oci;
using Farm.Oci.Registry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Assembly;

/// <summary>How a blob reached a pushed repository.</summary>
public enum BlobOutcome
{
    /// <summary>The repository had it; nothing was sent.</summary>
    Exists,

    /// <summary>Linked from another repository of the same registry (cross-repository mount); nothing was sent.</summary>
    Mounted,

    /// <summary>The bytes were copied from a blob source to the registry.</summary>
    Uploaded,
}

/// <summary>
/// One blob of one push destination (<c>host/repository</c>), for progress display; <c>MountedFrom</c> names the
/// repository a mounted blob came from.
/// </summary>
public sealed record BlobPushed(string Repository, Descriptor Blob, BlobOutcome Outcome, string? MountedFrom = null);

/// <summary>What a push did: the manifest digest, the references now pointing at it and every blob's outcome.</summary>
public sealed record ImagePushResult(Digest Digest, IReadOnlyList<string> References, IReadOnlyList<BlobPushed> Blobs);

/// <summary>
/// Pushes an assembled image to one or more tags. Every blob of every destination is in place before the first
/// manifest is written, so a failure leaves no tag pointing at a partial image.
/// </summary>
/// <remarks>
/// <para>Per layer: HEAD in the destination; else a cross-repository mount from each blob source that is a repository
/// of the same registry (the cache, the base image's repository, a destination pushed earlier in the same call);
/// else a streamed copy from the first source that has it. Then the config, then the manifest under every tag.</para>
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
    /// Pushes <paramref name="image"/> to every reference in <paramref name="tags"/>, reading layers from
    /// <paramref name="sources"/> (in order of preference, the cache store first) and telling
    /// <paramref name="progress"/> about each blob as it is settled.
    /// </summary>
    public async Task<ImagePushResult> PushAsync(
        AssembledImage image,
        IReadOnlyList<string> tags,
        IReadOnlyList<IBlobStore> sources,
        IProgress<BlobPushed>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(tags);
        ArgumentNullException.ThrowIfNull(sources);
        var targets = tags.Select(ParseTarget).ToList();
        if (targets.Count == 0)
        {
            throw new InvalidPushTargetException(string.Empty, "no tag was given");
        }

        var outcomes = new List<BlobPushed>();
        var pushed = new List<RegistryBlobStore>();
        foreach (var repository in targets.Select(t => (t.Registry, t.Repository)).Distinct())
        {
            var client = _clientFor(repository.Registry);
            var target = new RegistryBlobStore(client, repository.Repository);
            var mountSources = sources.OfType<RegistryBlobStore>().Concat(pushed)
                .Where(s => string.Equals(s.Client.Registry, client.Registry, StringComparison.OrdinalIgnoreCase) && s.Repository != target.Repository)
                .Select(s => s.Repository)
                .Distinct(StringComparer.Ordinal)
                .ToList();
            var results = new BlobPushed[image.Manifest.Layers.Count];
            await Parallel.ForEachAsync(
                Enumerable.Range(0, results.Length),
                new ParallelOptions { MaxDegreeOfParallelism = BlobParallelism, CancellationToken = cancellationToken },
                async (i, ct) =>
                {
                    results[i] = await PushLayerAsync(target, image.Manifest.Layers[i], mountSources, sources, ct).ConfigureAwait(false);
                    progress?.Report(results[i]);
                }).ConfigureAwait(false);
            outcomes.AddRange(results);

            var config = await PushConfigAsync(target, image, cancellationToken).ConfigureAwait(false);
            progress?.Report(config);
            outcomes.Add(config);
            pushed.Add(target);
        }

        // Only now that every destination holds every blob do tags move: the manifest goes last.
        var references = new List<string>();
        foreach (var target in targets)
        {
            var digest = await _clientFor(target.Registry)
                .PushManifestAsync(target.Repository, target.Reference, image.ManifestBytes, image.ManifestDescriptor.MediaType, cancellationToken)
                .ConfigureAwait(false);
            Log.ManifestTagged(_logger, digest, target);
            references.Add(target.ToString());
        }

        return new ImagePushResult(image.Digest, references, outcomes);
    }

    private async Task<BlobPushed> PushLayerAsync(
        RegistryBlobStore target, Descriptor layer, IReadOnlyList<string> mountSources, IReadOnlyList<IBlobStore> sources, CancellationToken cancellationToken)
    {
        var where = target.ToString();
        if (await target.StatAsync(layer.Digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            Log.BlobSettled(_logger, layer.Digest, where, BlobOutcome.Exists, null);
            return new BlobPushed(where, layer, BlobOutcome.Exists);
        }

        foreach (var from in mountSources)
        {
            if (await target.MountFromAsync(layer.Digest, from, cancellationToken).ConfigureAwait(false))
            {
                Log.BlobSettled(_logger, layer.Digest, where, BlobOutcome.Mounted, from);
                return new BlobPushed(where, layer, BlobOutcome.Mounted, from);
            }
        }

        foreach (var source in sources)
        {
            if (await source.StatAsync(layer.Digest, cancellationToken).ConfigureAwait(false) is null)
            {
                continue;
            }

            // Streamed straight from the source to the registry; the client verifies the digest before committing.
            var content = await source.OpenReadAsync(layer.Digest, cancellationToken).ConfigureAwait(false);
            await using (content.ConfigureAwait(false))
            {
                var result = await target.Client.PushBlobAsync(target.Repository, layer, content, mountFrom: null, cancellationToken).ConfigureAwait(false);
                var outcome = result == BlobPushResult.AlreadyExists ? BlobOutcome.Exists : BlobOutcome.Uploaded;
                Log.BlobSettled(_logger, layer.Digest, where, outcome, source);
                return new BlobPushed(where, layer, outcome);
            }
        }

        throw new BlobUnavailableException(layer.Digest.ToString(), where, mountSources.Select(m => $"{target.Client.Registry}/{m} (mount)").Concat(sources.Select(s => s.ToString() ?? s.GetType().Name)));
    }

    private async Task<BlobPushed> PushConfigAsync(RegistryBlobStore target, AssembledImage image, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(image.ConfigBytes.ToArray(), writable: false);
        var result = await target.Client.PushBlobAsync(target.Repository, image.ConfigDescriptor, content, mountFrom: null, cancellationToken).ConfigureAwait(false);
        var outcome = result switch
        {
            BlobPushResult.AlreadyExists => BlobOutcome.Exists,
            BlobPushResult.Mounted => BlobOutcome.Mounted,
            _ => BlobOutcome.Uploaded,
        };
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
