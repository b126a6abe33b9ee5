using System.Text.RegularExpressions;

namespace Farm.Oci.Registry;

/// <summary>
/// A reference to an image, <c>[registry/]repository[:tag][@digest]</c>, normalised the way Docker does:
/// no registry means <c>docker.io</c>, a one-component Docker Hub name gets the <c>library/</c> prefix, and a
/// reference with neither tag nor digest means <c>:latest</c>.
/// </summary>
/// <remarks>
/// Grammar: https://github.com/distribution/reference/blob/main/reference.go and the repository name rule of
/// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests.
/// </remarks>
public sealed partial record ImageReference
{
    public const string DockerHub = "docker.io";

    /// <summary>The registry as written in references: <c>docker.io</c>, <c>127.0.0.1:5100</c>, <c>ghcr.io</c>.</summary>
    public required string Registry { get; init; }

    /// <summary>The repository path inside the registry, e.g. <c>library/alpine</c>.</summary>
    public required string Repository { get; init; }

    /// <summary>The tag, or null when the reference names only a digest.</summary>
    public string? Tag { get; init; }

    public Digest? Digest { get; init; }

    /// <summary>What to ask the registry for: the digest when there is one (it pins the content), else the tag.</summary>
    public string Reference => Digest?.ToString() ?? Tag ?? "latest";

    public static ImageReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return TryParse(reference, out var parsed, out var reason) ? parsed : throw new InvalidImageReferenceException(reference, reason);
    }

    public static bool TryParse(string? reference, out ImageReference parsed) => TryParse(reference, out parsed, out _);

    /// <summary>The same repository with another tag and no digest.</summary>
    public ImageReference WithTag(string tag) => this with { Tag = tag, Digest = null };

    public override string ToString()
    {
        var text = $"{Registry}/{Repository}";
        if (Tag is not null)
        {
            text += ":" + Tag;
        }

        return Digest is { } d ? $"{text}@{d}" : text;
    }

    private static bool TryParse(string? reference, out ImageReference parsed, out string reason)
    {
        parsed = null!;
        if (string.IsNullOrWhiteSpace(reference))
        {
            reason = "it is empty";
            return false;
        }

        var rest = reference;
        Digest? digest = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            if (!Oci.Digest.TryParse(rest[(at + 1)..], out var d))
            {
                reason = $"'{rest[(at + 1)..]}' is not a valid digest";
                return false;
            }

            digest = d;
            rest = rest[..at];
        }

        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon > rest.LastIndexOf('/'))
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!TagPattern().IsMatch(tag))
            {
                reason = $"tag '{tag}' must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'";
                return false;
            }
        }

        var registry = DockerHub;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0)
        {
            var first = rest[..slash];
            // Docker's rule: the first component is a host only when it looks like one.
            if (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost")
            {
                registry = first;
                rest = rest[(slash + 1)..];
            }
        }

        if (registry is "index.docker.io" or "registry-1.docker.io")
        {
            registry = DockerHub;
        }

        if (registry == DockerHub && !rest.Contains('/', StringComparison.Ordinal))
        {
            rest = "library/" + rest;
        }

        if (rest.Length > 255 || !RepositoryPattern().IsMatch(rest))
        {
            reason = $"repository '{rest}' must be lower-case path components of letters, digits and separators ('.', '_', '__', '-')";
            return false;
        }

        parsed = new ImageReference
        {
            Registry = registry,
            Repository = rest,
            Tag = tag ?? (digest is null ? "latest" : null),
            Digest = digest,
        };
        reason = string.Empty;
        return true;
    }

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$", RegexOptions.CultureInvariant)]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();
}
