using Farm.Oci.IO;

using Farm.Dockerfile.Context;

namespace Farm.Worker.Copy;

/// <summary>One source path a COPY/ADD pattern selected.</summary>
/// <param name="Pattern">The pattern as written.</param>
/// <param name="LogicalPath">Path relative to the source root as matched (symlinks not resolved), without leading slash.</param>
/// <param name="HostPath">The resolved host path (the named source itself is followed, within the root).</param>
/// <param name="Stat">lstat of <paramref name="HostPath"/>.</param>
internal sealed record SourceMatch(string Pattern, string LogicalPath, string HostPath, FileStat Stat)
{
    /// <summary>The name a file source gets inside a destination directory.</summary>
    public string Name => LogicalPath.Length == 0 ? string.Empty : LogicalPath[(LogicalPath.LastIndexOf('/') + 1)..];
}

/// <summary>Expands COPY/ADD source patterns against a source root, the same way for copying and for cache keys.</summary>
internal static class SourceMatcher
{
    public static List<SourceMatch> Expand(string root, string pattern, CopySourceKind kind, string instruction, CancellationToken cancellationToken)
    {
        var confined = kind == CopySourceKind.BuildContext;
        if (RootedPath.EscapesLexically(pattern))
        {
            throw new SourceOutsideContextException(instruction, pattern);
        }

        var parts = RootedPath.Split(RootedPath.Clean(pattern));
        foreach (var part in parts)
        {
            try
            {
                ContextGlob.Validate(part);
            }
            catch (FormatException e)
            {
                throw new CopyOptionException($"{instruction} source '{pattern}' is not a valid pattern ({e.Message}); fix or escape the wildcard", e);
            }
        }

        var logical = new List<string>();
        ExpandInto(root, [], parts, 0, confined, instruction, pattern, logical, cancellationToken);
        var matches = new List<SourceMatch>();
        foreach (var path in logical)
        {
            var host = RootedPath.Resolve(root, path, followFinal: true, confined)
                ?? throw new SourceOutsideContextException(instruction, pattern);
            if (UnixFile.Lstat(host) is not { } stat)
            {
                // A wildcard listed the name, so a miss here is a dangling symlink: nothing to copy.
                continue;
            }

            matches.Add(new SourceMatch(pattern, path, host, stat));
        }

        if (matches.Count == 0)
        {
            throw new CopySourceNotFoundException(instruction, pattern);
        }

        return matches;
    }

    private static void ExpandInto(
        string root, List<string> prefix, string[] parts, int index, bool confined, string instruction, string pattern,
        List<string> results, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (index == parts.Length)
        {
            results.Add(string.Join('/', prefix));
            return;
        }

        var part = parts[index];
        if (!ContextGlob.HasMeta(part))
        {
            prefix.Add(part);
            ExpandInto(root, prefix, parts, index + 1, confined, instruction, pattern, results, cancellationToken);
            prefix.RemoveAt(prefix.Count - 1);
            return;
        }

        var dir = RootedPath.Resolve(root, string.Join('/', prefix), followFinal: true, confined)
            ?? throw new SourceOutsideContextException(instruction, pattern);
        if (!Directory.Exists(dir))
        {
            return;
        }

        var names = Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).OfType<string>().ToList();
        names.Sort(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (ContextGlob.IsMatch(part, name))
            {
                prefix.Add(name);
                ExpandInto(root, prefix, parts, index + 1, confined, instruction, pattern, results, cancellationToken);
                prefix.RemoveAt(prefix.Count - 1);
            }
        }
    }
}
