using Farm.Coordinator.Auth;
using Farm.Oci.Registry;
using Farm.Oci.Stores;

namespace Farm.Coordinator.Builds;

/// <summary>
/// The registry clients of one build: with its own credentials (<see cref="BuildRegistryAccess"/>), one client per
/// host, made for this build and disposed with it, so no token or credential of one tenant's build is ever in a client
/// another build uses. A build without its own credentials uses the locator's shared clients (the farm's).
/// </summary>
internal sealed class BuildRegistryClients(BlobStoreLocator stores, BuildRegistryAccess? access) : IDisposable
{
    private readonly Dictionary<string, RegistryClient> _clients = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _lock = new();

    /// <summary>The client for <paramref name="registry"/> (a host, as in image references).</summary>
    public RegistryClient ClientFor(string registry)
    {
        if (access is null)
        {
            return stores.ClientFor(registry);
        }

        lock (_lock)
        {
            if (!_clients.TryGetValue(registry, out var client))
            {
                client = _clients[registry] = stores.CreateClient(registry, access);
            }

            return client;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var client in _clients.Values)
            {
                client.Dispose();
            }

            _clients.Clear();
        }
    }
}
