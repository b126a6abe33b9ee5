using Farm.Oci.Registry;

namespace Farm.Oci;

/// <summary>
/// A repository in an OCI registry used as a content-addressed blob store (the cluster's cache, e.g.
/// <c>127.0.0.1:5100/farm/cache</c>). Reads verify digests while streaming; writes skip blobs already present.
/// </summary>
/// <remarks>
/// The registry garbage-collects blobs no manifest references: the coordinator keeps the cached layers referenced
/// with a manifest per action cache entry (Farm.Coordinator's <c>ReferencingActionCache</c>); other blobs (contexts)
/// may go. https://github.com/opencontainers/distribution-spec/blob/main/spec.md
/// </remarks>
public sealed class RegistryBlobStore(RegistryClient client, string repository) : IBlobStore
{
    public RegistryClient Client { get; } = client ?? throw new ArgumentNullException(nameof(client));

    public string Repository { get; } = repository ?? throw new ArgumentNullException(nameof(repository));

    public Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken) =>
        Client.StatBlobAsync(Repository, digest, cancellationToken);

    public Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken) =>
        Client.OpenBlobAsync(Repository, digest, size: null, cancellationToken);

    public Task PutAsync(Descriptor descriptor, Stream content, CancellationToken cancellationToken) =>
        Client.PushBlobAsync(Repository, descriptor, content, mountFrom: null, cancellationToken);

    /// <summary>
    /// Makes a blob of another repository of the same registry available here without copying:
    /// <see cref="BlobOutcome.Mounted"/>, <see cref="BlobOutcome.Exists"/> when another push put it here meanwhile,
    /// null when the registry declined.
    /// </summary>
    public Task<BlobOutcome?> MountFromAsync(Digest digest, string fromRepository, CancellationToken cancellationToken) =>
        Client.TryMountBlobAsync(Repository, digest, fromRepository, cancellationToken);

    public override string ToString() => $"{Client.Registry}/{Repository}";
}
