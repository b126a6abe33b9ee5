using System.Globalization;

namespace Farm.Dockerfile.Instructions;

/// <summary>
/// EXPOSE's port specs as image config keys, for the build graph and for <c>-c EXPOSE</c> changes alike.
/// See <see href="https://docs.docker.com/reference/dockerfile/#expose">EXPOSE</see>.
/// </summary>
public static class ExposedPorts
{
    /// <summary>
    /// <c>port[/proto]</c> or <c>start-end[/proto]</c> (an <c>ip:</c> or <c>host:</c> prefix is dropped, as Docker
    /// does) as <c>80/tcp</c> keys, one per port; null when the spec is malformed.
    /// </summary>
    public static IReadOnlyList<string>? Normalize(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var rest = spec;
        var proto = "tcp";
        var slash = rest.LastIndexOf('/');
        if (slash >= 0)
        {
            proto = rest[(slash + 1)..].ToLowerInvariant();
            rest = rest[..slash];
        }

        var colon = rest.LastIndexOf(':');
        if (colon >= 0)
        {
            rest = rest[(colon + 1)..];
        }

        var dash = rest.IndexOf('-', StringComparison.Ordinal);
        var startText = dash < 0 ? rest : rest[..dash];
        var endText = dash < 0 ? rest : rest[(dash + 1)..];
        if (proto is not ("tcp" or "udp" or "sctp")
            || !ushort.TryParse(startText, NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            || !ushort.TryParse(endText, NumberStyles.None, CultureInfo.InvariantCulture, out var end)
            || end < start)
        {
            return null;
        }

        return [.. Enumerable.Range(start, end - start + 1).Select(p => $"{p.ToString(CultureInfo.InvariantCulture)}/{proto}")];
    }
}
