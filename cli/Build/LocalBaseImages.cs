using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Oci.Images;
using Farm.Oci.Registry;

namespace Farm.Cli.Build;

/// <summary>
/// <c>FROM</c> for the embedded farm, as <c>docker build</c> does it: a name in the local image store is used as it
/// is; any other is pulled into the store first (so it is listed by <c>farm images</c> and its blobs are where the
/// build reads them). With <c>--pull</c> every base is pulled again.
/// </summary>
internal sealed class LocalBaseImages(LocalImageStore store, bool alwaysPull, Action<string>? onPull) : ILocalImageSource
{
    public async Task<LocalBaseImage?> TryGetAsync(string reference, CancellationToken cancellationToken)
    {
        if (!alwaysPull)
        {
            try
            {
                var local = await store.GetAsync(reference, cancellationToken).ConfigureAwait(false);
                return new LocalBaseImage(local.ManifestDescriptor.Digest, local.Manifest, local.Config);
            }
            catch (FarmException e) when (e is NoSuchImageException or InvalidImageNameException)
            {
                // Not local: pulled below.
            }
        }

        onPull?.Invoke(reference);
        try
        {
            var pulled = await store.PullAsync(reference, DockerConfig.Default(), null, null, cancellationToken).ConfigureAwait(false);
            return new LocalBaseImage(pulled.ManifestDescriptor.Digest, pulled.Manifest, pulled.Config);
        }
        catch (Exception e) when (e is FarmException or HttpRequestException)
        {
            throw new BaseImageUnavailableException(reference, $"it is not a local image (farm images) and pulling it failed: {e.Message}", e);
        }
    }
}
