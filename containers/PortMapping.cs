using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Farm.Oci.Net;

namespace Farm.Containers;

/// <summary>
/// A published port: connections to <see cref="HostIp"/>:<see cref="HostPort"/> on the host reach
/// <see cref="ContainerPort"/> in the container, as <c>docker run -p</c> sets up.
/// See <see href="https://docs.docker.com/reference/cli/docker/container/run/#publish">docker run --publish</see>.
/// </summary>
/// <param name="HostIp">The host address listened on; <c>0.0.0.0</c> for every interface.</param>
/// <param name="HostPort">The host port.</param>
/// <param name="ContainerPort">The port inside the container.</param>
/// <param name="Protocol"><c>tcp</c> or <c>udp</c>.</param>
public sealed record PortMapping(string HostIp, int HostPort, int ContainerPort, string Protocol)
{
    /// <summary>The address every interface listens on.</summary>
    public const string AnyAddress = "0.0.0.0";

    /// <summary>docker's PORTS column form: <c>0.0.0.0:8080->80/tcp</c>.</summary>
    public override string ToString() => $"{HostIp}:{HostPort}->{ContainerPort}/{Protocol}";

    /// <summary>
    /// Parses <c>[IP:][HOST:]CONTAINER[/tcp|/udp]</c>; a missing or zero host port is given a free one.
    /// </summary>
    /// <exception cref="InvalidPortMappingException">The value is malformed.</exception>
    public static PortMapping Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var text = spec.Trim();
        var protocol = "tcp";
        var slash = text.LastIndexOf('/');
        if (slash >= 0)
        {
            protocol = text[(slash + 1)..].ToLowerInvariant();
            text = text[..slash];
            if (protocol is not ("tcp" or "udp"))
            {
                throw new InvalidPortMappingException(spec, $"the protocol '{protocol}' is neither tcp nor udp");
            }
        }

        // An IPv6 host address comes in brackets: [::1]:8080:80.
        string? ip = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                throw new InvalidPortMappingException(spec, "an IPv6 address needs brackets followed by ':'");
            }

            ip = text[1..close];
            text = text[(close + 2)..];
        }

        var parts = text.Split(':');
        string? host;
        string container;
        switch (parts.Length)
        {
            case 1:
                host = null;
                container = parts[0];
                break;
            case 2:
                host = parts[0];
                container = parts[1];
                break;
            case 3 when ip is null:
                ip = parts[0];
                host = parts[1];
                container = parts[2];
                break;
            default:
                throw new InvalidPortMappingException(spec, "too many ':'");
        }

        if (ip is not null && ip.Length > 0 && !IPAddress.TryParse(ip, out _))
        {
            throw new InvalidPortMappingException(spec, $"'{ip}' is not an IP address");
        }

        var containerPort = ParsePort(spec, container, "container");
        var hostPort = string.IsNullOrEmpty(host) ? 0 : ParsePort(spec, host, "host");
        if (hostPort == 0)
        {
            hostPort = FreePort(protocol);
        }

        return new PortMapping(string.IsNullOrEmpty(ip) ? AnyAddress : ip, hostPort, containerPort, protocol);
    }

    /// <summary>
    /// <c>-P</c>: every port the image EXPOSEs (<c>80/tcp</c>, <c>53/udp</c>, <c>8000-8002/tcp</c>) on a free host port.
    /// </summary>
    public static IReadOnlyList<PortMapping> ForExposed(IEnumerable<string> exposedPorts)
    {
        ArgumentNullException.ThrowIfNull(exposedPorts);
        var mappings = new List<PortMapping>();
        foreach (var exposed in exposedPorts)
        {
            var slash = exposed.IndexOf('/', StringComparison.Ordinal);
            var protocol = slash < 0 ? "tcp" : exposed[(slash + 1)..].ToLowerInvariant();
            var ports = slash < 0 ? exposed : exposed[..slash];
            var dash = ports.IndexOf('-', StringComparison.Ordinal);
            var first = ParsePort(exposed, dash < 0 ? ports : ports[..dash], "exposed");
            var last = dash < 0 ? first : ParsePort(exposed, ports[(dash + 1)..], "exposed");
            for (var port = first; port <= last; port++)
            {
                mappings.Add(new PortMapping(AnyAddress, FreePort(protocol), port, protocol));
            }
        }

        return mappings;
    }

    private static int ParsePort(string spec, string text, string which)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535 || (port == 0 && which != "host"))
        {
            throw new InvalidPortMappingException(spec, $"the {which} port '{text}' is not a number from 1 to 65535");
        }

        return port;
    }

    // The kernel picks a port no one listens on; slirp4netns binds it a moment later. Docker does the same.
    private static int FreePort(string protocol) => protocol == "udp" ? FreePorts.Udp(IPAddress.Any) : FreePorts.Tcp(IPAddress.Any);
}
