using System.Net;
using System.Net.Sockets;

namespace Farm.Oci.Net;

/// <summary>
/// A port no one is bound to now, picked by the kernel (bind to port 0, read the port, release it), as Docker does
/// for <c>-p 80</c>. Another process may take it before the caller binds it; callers that can bind port 0
/// themselves should.
/// </summary>
/// <remarks>
/// In Farm.Oci because it is the lowest project the worker (published container ports), the CLI (the embedded
/// farm's silo ports) and the test fixtures all reference; Farm.Contracts holds messages only.
/// </remarks>
public static class FreePorts
{
    /// <summary>A free TCP port on <paramref name="address"/> (default loopback).</summary>
    public static int Tcp(IPAddress? address = null) => Pick(SocketType.Stream, ProtocolType.Tcp, address);

    /// <summary>A free UDP port on <paramref name="address"/> (default loopback).</summary>
    public static int Udp(IPAddress? address = null) => Pick(SocketType.Dgram, ProtocolType.Udp, address);

    private static int Pick(SocketType type, ProtocolType protocol, IPAddress? address)
    {
        var bind = address ?? IPAddress.Loopback;
        using var socket = new Socket(bind.AddressFamily, type, protocol);
        socket.Bind(new IPEndPoint(bind, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
