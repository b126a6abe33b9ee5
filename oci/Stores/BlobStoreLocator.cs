using Farm.Contracts;
using Farm.Oci.Registry;

namespace Farm.Oci.Stores;

/// <summary>
/// Opens the blob store a job names: <c>registry://HOST[:PORT]/REPOSITORY</c> for a repository in a registry (the
/// cluster), or <c>oci-layout:/ABSOLUTE/PATH</c> for an image-layout directory (the embedded farm). Stores are
/// opened once per address and shared.
/// </summary>
public sealed class BlobStoreLocator(RegistryClientOptions? registryOptions = null, ICredentialProvider? credentials = null) : IDisposable
{
    private readonly Dictionary<string, Task<IBlobStore>> _stores = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RegistryClient> _clients = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _lock = new();

    public Task<IBlobStore> OpenAsync(string address, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        lock (_lock)
        {
            if (!_stores.TryGetValue(address, out var store) || store.IsFaulted || store.IsCanceled)
            {
                store = _stores[address] = OpenNewAsync(address, cancellationToken);
            }

            return store;
        }
    }

    /// <summary>The registry client for a host, shared by every store and pull on that host.</summary>
    public RegistryClient ClientFor(string registry)
    {
        lock (_lock)
        {
            if (!_clients.TryGetValue(registry, out var client))
            {
                client = _clients[registry] = new RegistryClient(registry, registryOptions, credentials ?? DockerConfig.Default());
            }

            return client;
        }
    }

    /// <summary>
    /// A new client for <paramref name="registry"/> with the locator's options and other credentials (one build's, one
    /// tenant's): not shared, so the caller disposes it; the locator's own clients keep the farm's credentials.
    /// </summary>
    public RegistryClient CreateClient(string registry, ICredentialProvider credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return new RegistryClient(registry, registryOptions, credentials);
    }

    private async Task<IBlobStore> OpenNewAsync(string address, CancellationToken cancellationToken)
    {
        const string registryScheme = "registry://";
        const string layoutScheme = "oci-layout:";
        if (address.StartsWith(registryScheme, StringComparison.Ordinal))
        {
            var rest = address[registryScheme.Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || slash == rest.Length - 1)
            {
                throw new InvalidBlobStoreAddressException(address);
            }

            return new RegistryBlobStore(ClientFor(rest[..slash]), rest[(slash + 1)..]);
        }

        if (address.StartsWith(layoutScheme, StringComparison.Ordinal) && Path.IsPathRooted(address[layoutScheme.Length..]))
        {
            return await OciLayoutStore.OpenOrCreateAsync(address[layoutScheme.Length..], cancellationToken).ConfigureAwait(false);
        }

        throw new InvalidBlobStoreAddressException(address);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var store in _stores.Values.Where(s => s.IsCompletedSuccessfully))
            {
                (store.Result as IDisposable)?.Dispose();
            }

            _stores.Clear();
            foreach (var client in _clients.Values)
            {
                client.Dispose();
            }

            _clients.Clear();
        }
    }
}

/// <summary>A blob store address is neither <c>registry://HOST/REPO</c> nor <c>oci-layout:/PATH</c>.</summary>
public sealed class InvalidBlobStoreAddressException(string address)
    : FarmException(FarmErrorCodes.InvalidBlobStoreAddress, $"'{address}' is not a blob store address. Use registry://HOST[:PORT]/REPOSITORY or oci-layout:/ABSOLUTE/PATH.");
