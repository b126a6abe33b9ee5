using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Farm.Containers.Sandbox;
using Farm.Contracts;

namespace Farm.Worker.Copy;

/// <summary>
/// Where a worker may fetch on a build's behalf (ADD of an http(s) URL or a git repository): where the build's RUN steps
/// may connect, and nowhere else. A Dockerfile names the URL, so without a fence <c>ADD http://127.0.0.1:6379/</c> or the
/// address of the farm's registry would read the farm's own services into a layer. Refused: loopback and every address
/// of this machine, the unspecified, link-local (cloud metadata services live at 169.254.169.254), multicast and
/// broadcast addresses, and the sandbox's denied networks with the farm services the worker learned of
/// (<see cref="SandboxFirewall.DeniedNetworks"/>, <c>Farm:Worker:Sandbox:DeniedNetworks</c>). The check is on the
/// addresses a name resolves to, at connection time, and the connection goes to an address that passed: a name that
/// resolves elsewhere on a second lookup, or a redirect to another host, meets the same check.
/// </summary>
public sealed class FetchFence
{
    private readonly Func<IReadOnlyCollection<IPNetwork>> _denied;

    /// <param name="denied">The networks refused besides this machine's own; read at each check (the list grows as the worker learns services).</param>
    public FetchFence(Func<IReadOnlyCollection<IPNetwork>> denied)
    {
        _denied = denied ?? throw new ArgumentNullException(nameof(denied));
    }

    /// <summary>Why <paramref name="address"/> is refused, or null when a fetch may connect to it.</summary>
    public string? Refuses(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || IsLocal(address))
        {
            return "it is this machine";
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var bytes = address.GetAddressBytes();
            if (bytes[0] == 169 && bytes[1] == 254)
            {
                return "it is link-local (where cloud metadata services answer)";
            }

            if (bytes[0] >= 224 || address.Equals(IPAddress.Broadcast))
            {
                return "it is a multicast or broadcast address";
            }

            if (_denied().Where(n => n.Contains(address)).Select(n => (IPNetwork?)n).FirstOrDefault() is { } network)
            {
                return $"it is in {network}, a network of the farm's or denied to builds (Farm:Worker:Sandbox:DeniedNetworks)";
            }
        }
        else if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast)
        {
            return "it is a link-local, site-local or multicast address";
        }

        return null;
    }

    /// <summary>The addresses of <paramref name="host"/> a fetch may connect to: every one it resolves to must pass.</summary>
    /// <exception cref="FetchRefusedException">One of them is refused (FARM1213).</exception>
    /// <exception cref="SocketException">The name does not resolve.</exception>
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        var bare = host.TrimStart('[').TrimEnd(']');
        var addresses = IPAddress.TryParse(bare, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(bare, cancellationToken).ConfigureAwait(false);
        // All, not any: a name that answers with a public and a private address must not be a way to the private one.
        foreach (var address in addresses)
        {
            if (Refuses(address) is { } why)
            {
                throw new FetchRefusedException(host, address, why);
            }
        }

        return addresses;
    }

    /// <summary>An HTTP handler whose every connection (redirects included) goes only to addresses that pass.</summary>
    public SocketsHttpHandler Handler(TimeSpan connectTimeout) => new()
    {
        ConnectTimeout = connectTimeout,
        // A proxy would make the fence check the proxy instead of the URL's host.
        UseProxy = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await ResolveAsync(context.DnsEndPoint.Host, cancellationToken).ConfigureAwait(false);
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync([.. addresses], context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    private static bool IsLocal(IPAddress address)
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Any(u => u.Address.Equals(address));
        }
        catch (NetworkInformationException)
        {
            return false;
        }
    }
}

/// <summary>
/// FARM1213: a worker refused to fetch an ADD source from an address a build may not reach (this machine, the farm's
/// services, link-local); see <see cref="FetchFence"/>.
/// </summary>
public sealed class FetchRefusedException(string source, IPAddress address, string why)
    : FarmException(
        FarmErrorCodes.FetchRefused,
        $"ADD source '{source}': a worker does not fetch from {address}: {why}. A build reaches what its RUN steps reach; serve the file from another address, or COPY it from the build context")
{
    /// <summary>The refused address.</summary>
    public IPAddress Address { get; } = address;

    /// <summary>Why it is refused.</summary>
    public string Why { get; } = why;
}
