namespace Farm.Oci;

/// <summary>What a manifest deletion did (<see cref="Registry.RegistryClient.DeleteManifestAsync"/>).</summary>
public enum ManifestDeletion
{
    /// <summary>The registry deleted it.</summary>
    Deleted,

    /// <summary>The repository has no such manifest (deleted before).</summary>
    NotFound,

    /// <summary>The registry does not allow deletes (405 UNSUPPORTED).</summary>
    Refused,
}

/// <summary>How a blob reached a store.</summary>
public enum BlobOutcome
{
    /// <summary>The store had it; nothing was sent.</summary>
    Exists,

    /// <summary>Linked from another repository of the same registry (cross-repository mount); nothing was sent.</summary>
    Mounted,

    /// <summary>The bytes were sent: uploaded to a registry, written into a layout.</summary>
    Uploaded,
}

/// <summary>What <see cref="BlobCopy.CopyBlobAsync(IReadOnlyList{IBlobStore}, IBlobStore, Descriptor, CancellationToken)"/> did, and from which source (null when the target had the blob).</summary>
public readonly record struct BlobCopied(BlobOutcome Outcome, IBlobStore? From);

/// <summary>
/// The one way a blob moves between blob stores: a registry and the cache, the cache and a push destination, a
/// registry and the local image store, an archive and the local image store.
/// </summary>
/// <remarks>
/// <para>Nothing is sent when the target has the blob. When source and target are repositories of the same registry
/// the blob is mounted (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#mounting-a-blob-from-another-repository);
/// otherwise it is streamed, never buffered whole.</para>
/// <para>The target verifies the bytes against the descriptor's digest and size while it writes them and commits
/// only whole, verified content (the <see cref="IBlobStore.PutAsync"/> contract): a corrupt or truncated source
/// throws <see cref="DigestMismatchException"/> and leaves nothing in the target. So the copy does not hash the
/// bytes a second time.</para>
/// </remarks>
public static class BlobCopy
{
    /// <summary>Puts <paramref name="descriptor"/>'s blob from <paramref name="source"/> into <paramref name="target"/> unless it is there.</summary>
    /// <exception cref="BlobUnavailableException">Neither the target nor the source has the blob.</exception>
    public static Task<BlobCopied> CopyBlobAsync(IBlobStore source, IBlobStore target, Descriptor descriptor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        return CopyBlobAsync([source], target, descriptor, cancellationToken);
    }

    /// <summary>
    /// Puts <paramref name="descriptor"/>'s blob into <paramref name="target"/> unless it is there: a mount from the
    /// first of <paramref name="sources"/> in the same registry that has it, else a copy from the first that has it.
    /// </summary>
    /// <exception cref="BlobUnavailableException">Neither the target nor any source has the blob.</exception>
    public static async Task<BlobCopied> CopyBlobAsync(IReadOnlyList<IBlobStore> sources, IBlobStore target, Descriptor descriptor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(descriptor);
        if (await target.StatAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            return new BlobCopied(BlobOutcome.Exists, null);
        }

        if (target is RegistryBlobStore registry)
        {
            foreach (var source in sources.OfType<RegistryBlobStore>().Where(s => SameRegistryOtherRepository(s, registry)))
            {
                if (await registry.MountFromAsync(descriptor.Digest, source.Repository, cancellationToken).ConfigureAwait(false) is { } linked)
                {
                    return new BlobCopied(linked, linked == BlobOutcome.Mounted ? source : null);
                }
            }
        }

        foreach (var source in sources)
        {
            // Opening is the existence check: one request to a registry instead of a HEAD and then a GET.
            Stream content;
            try
            {
                content = await source.OpenReadAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false);
            }
            catch (BlobNotFoundException)
            {
                continue;
            }

            await using (content.ConfigureAwait(false))
            {
                await target.PutAsync(descriptor, content, cancellationToken).ConfigureAwait(false);
            }

            return new BlobCopied(BlobOutcome.Uploaded, source);
        }

        throw new BlobUnavailableException(descriptor.Digest, target.ToString() ?? target.GetType().Name, sources.Select(s => s.ToString() ?? s.GetType().Name));
    }

    /// <summary>
    /// Opens <paramref name="descriptor"/>'s blob from the first of <paramref name="sources"/> that has it, through a
    /// stream that verifies digest and size as it is read (for readers that unpack or re-encode the blob, which no
    /// store verifies for them); <paramref name="destination"/> names what it is read for in errors.
    /// </summary>
    /// <exception cref="BlobUnavailableException">No source has the blob.</exception>
    public static async Task<Stream> OpenVerifiedAsync(IReadOnlyList<IBlobStore> sources, Descriptor descriptor, string destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(descriptor);
        foreach (var source in sources)
        {
            try
            {
                var stream = await source.OpenReadAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false);
                return new DigestVerifyingStream(stream, descriptor.Digest, descriptor.Size, $"blob {descriptor.Digest} from {source}");
            }
            catch (BlobNotFoundException)
            {
            }
        }

        throw new BlobUnavailableException(descriptor.Digest, destination, sources.Select(s => s.ToString() ?? s.GetType().Name));
    }

    private static bool SameRegistryOtherRepository(RegistryBlobStore source, RegistryBlobStore target) =>
        string.Equals(source.Client.Registry, target.Client.Registry, StringComparison.OrdinalIgnoreCase)
        && !string.Equals(source.Repository, target.Repository, StringComparison.Ordinal);
}
