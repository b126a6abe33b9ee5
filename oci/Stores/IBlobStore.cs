namespace Farm.Oci;

/// <summary>
/// Content-addressed storage of blobs (layers, configs, manifests). Two adapters: an OCI image-layout
/// directory for the embedded farm, and a repository in an OCI registry for the cluster.
/// </summary>
/// <remarks>
/// Writes are verified against the digest the caller names, and are atomic: a blob is either whole and
/// visible under its digest or absent.
/// </remarks>
public interface IBlobStore
{
    /// <summary>The blob's size when the store has it, else null.</summary>
    Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Opens the blob for reading; throws <see cref="BlobNotFoundException"/> when absent.</summary>
    Task<Stream> OpenReadAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="content"/> under <paramref name="descriptor"/>'s digest unless already present.
    /// The content is verified while it is written; a mismatch leaves nothing behind.
    /// </summary>
    Task PutAsync(Descriptor descriptor, Stream content, CancellationToken cancellationToken);
}

/// <summary>The store does not hold the blob.</summary>
public sealed class BlobNotFoundException(Digest digest, string where)
    : Contracts.FarmException(Contracts.FarmErrorCodes.BlobNotFound, $"Blob {digest} is not in {where}. It may have been garbage-collected; rebuild or push it again.")
{
    public Digest Digest { get; } = digest;
}

/// <summary>No store holds a blob an image needs (FARM4111).</summary>
/// <remarks>The code dates from when only the coordinator's push raised it; it stays, as codes are stable.</remarks>
public sealed class BlobUnavailableException(Digest digest, string destination, IEnumerable<string> searched)
    : Contracts.FarmException(Contracts.FarmErrorCodes.BlobUnavailable, $"Blob {digest} needed for {destination} is in none of: {string.Join(", ", searched)}. It may have been garbage-collected: rebuild without the cache for the step that made it, or pull or push the base image again.")
{
    public Digest Digest { get; } = digest;
}
