using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Farm.Oci.Net;

/// <summary>
/// Holds the farm's own connections on a build's behalf (ADD of a URL or a git repository on a worker, a URL context on
/// a coordinator) to the addresses a rule allows. A Dockerfile or a submission names the URL, so without a fence it could
/// point the farm at its own Redis, its registry or a cloud metadata service and read the answer into a layer or a
/// context. The check is on every address a name resolves to, at connection time: <see cref="Handler"/> resolves,
/// checks and connects to an address that passed, so a redirect or a second lookup that answers differently meets the
/// same check. git is held to the addresses that passed by <c>GitSource.Fence</c>.
/// </summary>
/// <remarks>In Farm.Oci because it is the lowest project the worker and the coordinator both reference.</remarks>
public sealed class FetchFence
{
    private readonly Func<IPAddress, int, CancellationToken, ValueTask<string?>> _refusal;

    /// <param name="refusal">Why a connection to an address and port is refused (a sentence to follow "it is"), or null when it may go.</param>
    public FetchFence(Func<IPAddress, int, CancellationToken, ValueTask<string?>> refusal)
    {
        _refusal = refusal ?? throw new ArgumentNullException(nameof(refusal));
    }

    /// <summary>
    /// Why <paramref name="address"/> is refused whatever a farm's operator allows beside: it is this machine (loopback,
    /// the unspecified address, any address of its interfaces), link-local (where cloud metadata services answer),
    /// multicast or broadcast; null otherwise.
    /// </summary>
    public static string? Inherent(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        address = Plain(address);
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || IsLocal(address))
        {
            return "this machine";
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var bytes = address.GetAddressBytes();
            if (bytes[0] == 169 && bytes[1] == 254)
            {
                return "link-local (where cloud metadata services answer)";
            }

            if (bytes[0] >= 224 || address.Equals(IPAddress.Broadcast))
            {
                return "a multicast or broadcast address";
            }
        }
        else if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast)
        {
            return "a link-local, site-local or multicast address";
        }

        return null;
    }

    /// <summary>An IPv4-mapped IPv6 address as the IPv4 address it is; any other as it is.</summary>
    public static IPAddress Plain(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    /// <summary>The addresses of <paramref name="host"/> a connection to <paramref name="port"/> may use: every one it resolves to must pass.</summary>
    /// <exception cref="AddressRefusedException">One of them is refused.</exception>
    /// <exception cref="SocketException">The name does not resolve.</exception>
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, int port, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        var bare = host.TrimStart('[').TrimEnd(']');
        var addresses = IPAddress.TryParse(bare, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(bare, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        // All, not any: a name that answers with a public and a private address must not be a way to the private one.
        foreach (var address in addresses)
        {
            if (await _refusal(Plain(address), port, cancellationToken).ConfigureAwait(false) is { } why)
            {
                throw new AddressRefusedException(host, Plain(address), why);
            }
        }

        return addresses;
    }

    /// <summary>An HTTP handler whose every connection, a redirect's included, goes only to addresses that pass; no proxy.</summary>
    public SocketsHttpHandler Handler(TimeSpan connectTimeout) => new()
    {
        ConnectTimeout = connectTimeout,
        // A proxy would connect for us, to addresses never checked.
        UseProxy = false,
        UseCookies = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await ResolveAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false);
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

    /// <summary>The <see cref="AddressRefusedException"/> behind <paramref name="exception"/> (an HTTP client wraps what its connect callback throws), if any.</summary>
    public static AddressRefusedException? RefusalIn(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is AddressRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }

    private static bool IsLocal(IPAddress address)
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Any(u => Plain(u.Address).Equals(address));
        }
        catch (NetworkInformationException)
        {
            return false;
        }
    }
}

/// <summary>
/// A <see cref="FetchFence"/> refused an address. No code of its own: the worker reports it as FARM1213, a coordinator
/// fetching a URL context as FARM4360.
/// </summary>
public sealed class AddressRefusedException(string host, IPAddress address, string why)
    : Exception($"{host} is {address}, which is {why}")
{
    /// <summary>The name asked for.</summary>
    public string Host { get; } = host;

    /// <summary>The refused address.</summary>
    public IPAddress Address { get; } = address;

    /// <summary>Why it is refused (follows "it is").</summary>
    public string Why { get; } = why;
}
