using System.Globalization;
using System.Net;
using Farm.Contracts;

namespace Farm.Cli.Build;

/// <summary>
/// The values of <c>farm build</c>'s sandbox and named-context flags, read as docker buildx reads them:
/// <c>--ulimit</c>, <c>--add-host</c>, <c>--shm-size</c>, <c>--network</c> and <c>--build-context</c>.
/// </summary>
internal static class BuildFlags
{
    /// <summary>The names <c>--ulimit</c> takes (docker's, the resources of setrlimit(2)).</summary>
    public static readonly IReadOnlyList<string> UlimitNames =
        ["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"];

    /// <summary><c>NAME=SOFT[:HARD]</c>; HARD defaults to SOFT, -1 is unlimited (docker's <c>--ulimit</c>).</summary>
    /// <exception cref="InvalidUlimitException">Malformed, an unknown name, or soft above hard (FARM5060).</exception>
    public static Ulimit ParseUlimit(string value)
    {
        var eq = value.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            throw new InvalidUlimitException(value, "there is no NAME=");
        }

        var name = value[..eq].Trim().ToLowerInvariant();
        if (!UlimitNames.Contains(name, StringComparer.Ordinal))
        {
            throw new InvalidUlimitException(value, $"'{name}' is not a resource limit");
        }

        var limits = value[(eq + 1)..].Split(':');
        if (limits.Length > 2 || !long.TryParse(limits[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var soft)
            || soft < -1)
        {
            throw new InvalidUlimitException(value, "the limit is not a number (or -1 for unlimited)");
        }

        var hard = soft;
        if (limits.Length == 2 && (!long.TryParse(limits[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out hard) || hard < -1))
        {
            throw new InvalidUlimitException(value, "the hard limit is not a number (or -1 for unlimited)");
        }

        if (hard != -1 && (soft == -1 || soft > hard))
        {
            throw new InvalidUlimitException(value, $"the soft limit {limits[0]} is above the hard limit {hard.ToString(CultureInfo.InvariantCulture)}");
        }

        return new Ulimit(name, soft, hard);
    }

    /// <summary><c>HOST:IP</c> or <c>HOST=IP</c> (an IPv6 address keeps its colons), as <c>HOST:IP</c>.</summary>
    /// <exception cref="InvalidAddHostException">No host, no address, or <c>host-gateway</c> (FARM5061).</exception>
    public static string ParseAddHost(string value)
    {
        var separator = value.IndexOfAny(['=', ':']);
        if (separator <= 0 || separator == value.Length - 1)
        {
            throw new InvalidAddHostException(value, "it is not HOST:IP");
        }

        var host = value[..separator];
        var address = value[(separator + 1)..].Trim('[', ']');
        if (address == "host-gateway")
        {
            // docker maps it to its bridge's gateway; a RUN step's gateway (slirp4netns) leads nowhere useful, and the
            // worker's own addresses are fenced off from steps on purpose (docs/architecture.md, "Execution sandbox").
            throw new InvalidAddHostException(value, "host-gateway is not supported: a farm's RUN steps may not reach the worker's machine");
        }

        if (host.Any(c => char.IsWhiteSpace(c) || c is '#'))
        {
            throw new InvalidAddHostException(value, $"'{host}' is not a host name");
        }

        if (!IPAddress.TryParse(address, out var ip))
        {
            throw new InvalidAddHostException(value, $"'{address}' is not an IP address");
        }

        return $"{host}:{ip}";
    }

    /// <summary>A size as docker's <c>--shm-size</c>: bytes, or a number with b, k, m, g (binary units; a trailing b or ib is allowed).</summary>
    /// <exception cref="InvalidBuildSandboxException">Not a positive size (FARM5068).</exception>
    public static long ParseShmSize(string value)
    {
        var text = value.Trim().ToLowerInvariant();
        if (text.EndsWith("ib", StringComparison.Ordinal))
        {
            text = text[..^2];
        }
        else if (text.Length > 1 && text.EndsWith('b') && !char.IsDigit(text[^2]))
        {
            text = text[..^1];
        }

        long unit = text.Length > 0 ? text[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, 'b' => 1, _ => 0 } : 0;
        var number = unit == 0 ? text : text[..^1];
        unit = unit == 0 ? 1 : unit;
        if (!decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) || amount <= 0 || amount * unit > long.MaxValue)
        {
            throw new InvalidBuildSandboxException($"--shm-size {value} is not a size; write bytes or a number with k, m or g (binary units), e.g. --shm-size 128m");
        }

        return (long)(amount * unit);
    }

    /// <summary><c>default</c>, <c>none</c> or <c>host</c>, as buildx's <c>--network</c>.</summary>
    /// <exception cref="InvalidBuildSandboxException">Any other value (FARM5068).</exception>
    public static string ParseNetwork(string value) => value switch
    {
        "default" or "none" or "host" => value,
        _ => throw new InvalidBuildSandboxException($"--network {value} is not a network a build can use; use default (a private network with outbound access), none (loopback only) or host (the worker's network, with --allow network.host where the farm grants it)"),
    };

    /// <summary>One <c>--build-context NAME=VALUE</c>, its kind told from VALUE's scheme.</summary>
    /// <exception cref="InvalidBuildContextException">Malformed, or a scheme farm does not know (FARM5062).</exception>
    public static NamedContextSpec ParseBuildContext(string value)
    {
        var eq = value.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == value.Length - 1)
        {
            throw new InvalidBuildContextException(value, "it is not NAME=VALUE");
        }

        var name = value[..eq];
        var target = value[(eq + 1)..];
        if (name.Any(c => char.IsWhiteSpace(c) || c is ',' or '='))
        {
            throw new InvalidBuildContextException(value, $"'{name}' is not a context name");
        }

        const string image = "docker-image://";
        const string layout = "oci-layout://";
        if (target.StartsWith(image, StringComparison.Ordinal))
        {
            var reference = target[image.Length..];
            return reference.Length > 0 && Farm.Oci.Registry.ImageReference.TryParse(reference, out _)
                ? new NamedContextSpec(name, NamedContextKind.Image, reference, null)
                : throw new InvalidBuildContextException(value, $"'{reference}' is not an image reference");
        }

        if (target.StartsWith(layout, StringComparison.Ordinal))
        {
            var rest = target[layout.Length..];
            var at = rest.LastIndexOf("@sha256:", StringComparison.Ordinal);
            var path = at < 0 ? rest : rest[..at];
            var digest = at < 0 ? null : rest[(at + 1)..];
            if (path.Length == 0 || (digest is not null && !Farm.Oci.Digest.TryParse(digest, out _, out _)))
            {
                throw new InvalidBuildContextException(value, "it is not oci-layout://PATH[@sha256:...]");
            }

            // buildx reads PATH:TAG as well; a ':' after the last '/' is a tag, not part of the path.
            var colon = path.LastIndexOf(':');
            var tag = colon > path.LastIndexOf('/') ? path[(colon + 1)..] : null;
            return new NamedContextSpec(name, NamedContextKind.OciLayout, tag is null ? path : path[..colon], digest ?? tag);
        }

        if (target.Contains("://", StringComparison.Ordinal))
        {
            throw new InvalidBuildContextException(value, $"the scheme of '{target}' is not one farm knows (docker-image://, oci-layout://, or a directory)");
        }

        return new NamedContextSpec(name, NamedContextKind.Directory, target, null);
    }
}

/// <summary>The kinds of <c>--build-context</c> value.</summary>
internal enum NamedContextKind
{
    Directory,
    Image,
    OciLayout,
}

/// <summary>A <c>--build-context</c> as typed: for <see cref="NamedContextKind.OciLayout"/>, <paramref name="Select"/> is the digest or tag after the path.</summary>
internal sealed record NamedContextSpec(string Name, NamedContextKind Kind, string Value, string? Select);
