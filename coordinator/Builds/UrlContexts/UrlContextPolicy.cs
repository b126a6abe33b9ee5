using System.Net;
using System.Net.Sockets;
using Farm.Oci.Net;

namespace Farm.Coordinator.Builds.UrlContexts;

/// <summary>
/// Which addresses the farm fetches URL contexts from (<see cref="UrlContextOptions"/>): every address a host name
/// resolves to is checked, and the HTTP fetch checks again the address it connects to (a name that resolves to another
/// address the second time gains nothing).
/// </summary>
public sealed class UrlContextPolicy
{
    private readonly UrlContextOptions _options;
    private readonly IPNetwork[] _allowed;
    private readonly IPNetwork[] _denied;
    private readonly IReadOnlyList<(string Host, int Port)> _services;

    /// <param name="options">The operator's settings.</param>
    /// <param name="services">The farm's own services (Redis, RabbitMQ, the cache store's registry) as host and port.</param>
    /// <exception cref="FormatException">A network in the settings is not CIDR.</exception>
    public UrlContextPolicy(UrlContextOptions options, IReadOnlyList<(string Host, int Port)> services)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        _options = options;
        _allowed = [.. options.AllowedNetworks.Select(ParseNetwork)];
        _denied = [.. options.DeniedNetworks.Select(ParseNetwork)];
        _services = services;
        Fence = new FetchFence((address, port, cancellationToken) => new ValueTask<string?>(RefusalAsync(address, port, cancellationToken)));
    }

    /// <summary>The policy as a fence for the fetches themselves: git held to the checked addresses, every HTTP connection checked.</summary>
    public FetchFence Fence { get; }

    /// <summary>The largest tarball the farm downloads.</summary>
    public long MaxBytes => _options.MaxBytes;

    /// <summary>The addresses <paramref name="host"/> resolves to, all allowed; refused when URL contexts are off or any is not.</summary>
    /// <exception cref="UrlContextRefusedException">URL contexts are off, or an address is not allowed (FARM4360).</exception>
    /// <exception cref="UrlContextUnreachableException">The name does not resolve (FARM1240).</exception>
    public async Task<IPAddress[]> CheckAsync(string url, string host, int port, CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
        {
            throw new UrlContextRefusedException(url, "this farm does not fetch URL contexts (Farm:Builds:UrlContexts:Enabled is false)");
        }

        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new UrlContextUnreachableException(url, $"the host name {host} does not resolve ({e.Message})", e);
        }

        if (addresses.Length == 0)
        {
            throw new UrlContextUnreachableException(url, $"the host name {host} resolves to no address");
        }

        foreach (var address in addresses)
        {
            if (await RefusalAsync(address, port, cancellationToken).ConfigureAwait(false) is { } reason)
            {
                throw new UrlContextRefusedException(url, $"{host} is {address}, which is {reason}");
            }
        }

        return addresses;
    }

    /// <summary>Why the farm does not connect to <paramref name="address"/>:<paramref name="port"/>; null when it may.</summary>
    public async Task<string?> RefusalAsync(IPAddress address, int port, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (_allowed.Length == 0 && FetchFence.Inherent(address) is { } inherent)
        {
            return inherent;
        }

        foreach (var (host, servicePort) in _services)
        {
            foreach (var service in await ResolveServiceAsync(host, cancellationToken).ConfigureAwait(false))
            {
                // By address and port when the operator allowed the address (a test farm on loopback), else by address.
                if (service.Equals(address) && (servicePort == port || !Contains(_allowed, address)))
                {
                    return "an address of one of the farm's own services";
                }
            }
        }

        if (Contains(_denied, address))
        {
            return "in a network this farm does not fetch from (Farm:Builds:UrlContexts:DeniedNetworks)";
        }

        if (_allowed.Length > 0)
        {
            return Contains(_allowed, address) ? null : "outside the networks this farm fetches from (Farm:Builds:UrlContexts:AllowedNetworks)";
        }

        return null;
    }

    private static bool Contains(IPNetwork[] networks, IPAddress address) => networks.Any(n => n.Contains(address));

    private static async Task<IPAddress[]> ResolveServiceAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
        {
            return [literal];
        }

        try
        {
            return [.. (await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false)).Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)];
        }
        catch (SocketException)
        {
            // A service name that does not resolve here is an address nothing here can reach either.
            return [];
        }
    }

    private static IPNetwork ParseNetwork(string text) =>
        text.Contains('/', StringComparison.Ordinal) ? IPNetwork.Parse(text) : new IPNetwork(IPAddress.Parse(text), IPAddress.Parse(text).AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
}
