using Farm.Oci;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Images a build may use as <c>FROM</c> before any registry is asked: the embedded farm's local image store, as
/// <c>docker build</c> uses local images. The blobs of an image it returns must already be in the build's cache store
/// (the embedded farm's cache store is the local store's layout, so they are).
/// </summary>
public interface ILocalImageSource
{
    /// <summary>The image <paramref name="reference"/> names, or null to resolve it from its registry.</summary>
    Task<LocalBaseImage?> TryGetAsync(string reference, CancellationToken cancellationToken);
}

/// <summary>A base image found locally: pinned to <paramref name="Digest"/>, the digest of its manifest.</summary>
public sealed record LocalBaseImage(Digest Digest, ImageManifest Manifest, ImageConfig Config);
