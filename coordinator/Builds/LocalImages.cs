using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Oci.Images;
using Farm.Oci.Registry;

namespace Farm.Coordinator.Builds;

/// <summary>
/// The local farm's image store (<c>images/</c> under its state directory, the store <c>farm images</c> lists): base
/// images come from it as <c>docker build</c> takes them, and built images are named in it. Its OCI layout is also the
/// local farm's blob store, so neither needs a copy.
/// </summary>
public sealed class LocalImages(string stateDirectory) : IAsyncDisposable
{
    private readonly SemaphoreSlim _open = new(1, 1);
    private LocalImageStore? _store;

    public async Task<LocalImageStore> StoreAsync(CancellationToken cancellationToken)
    {
        if (_store is { } ready)
        {
            return ready;
        }

        await _open.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _store ??= await LocalImageStore.OpenAsync(stateDirectory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _open.Release();
        }
    }

    /// <summary>
    /// <c>FROM</c> as <c>docker build</c> resolves it: a local name is used as it is; any other is pulled into the store
    /// first (so <c>farm images</c> lists it and its blobs are where the build reads them); <paramref name="alwaysPull"/>
    /// (<c>--pull</c>) pulls every base again.
    /// </summary>
    public ILocalImageSource BaseImages(bool alwaysPull) => new Source(this, alwaysPull);

    /// <summary>Names the built image in the store under <paramref name="tags"/>; returns it as stored.</summary>
    public async Task<LocalImage> NameAsync(AssembledImage image, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var store = await StoreAsync(cancellationToken).ConfigureAwait(false);
        return await store.AddAsync(image.ConfigBytes, image.ConfigDescriptor.MediaType, image.ManifestBytes, image.ManifestDescriptor.MediaType, tags, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _store?.Dispose();
        _open.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Source(LocalImages images, bool alwaysPull) : ILocalImageSource
    {
        public async Task<LocalBaseImage?> TryGetAsync(string reference, CancellationToken cancellationToken)
        {
            var store = await images.StoreAsync(cancellationToken).ConfigureAwait(false);
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
}
