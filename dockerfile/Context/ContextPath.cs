namespace Farm.Dockerfile.Context;

/// <summary>
/// Rules for slash paths inside a build context or a stage's root, as COPY/ADD apply them: the lexical ones, and
/// <see cref="Resolve"/>, the one symlink resolution the coordinator (cache keys), the worker (COPY sources and
/// targets, ADD archives, --chown lookups) all use.
/// </summary>
public static class ContextPath
{
    /// <summary>BuildKit's limit (<c>cache/contenthash/path.go</c>): more symlinks than this on one path is a loop.</summary>
    public const int MaxSymlinks = 255;

    /// <summary>
    /// Resolves <paramref name="path"/> in <paramref name="tree"/> as if chrooted there: symlinks are followed
    /// component by component (the last one only with <paramref name="followFinal"/>), their targets read from the
    /// tree, so nothing outside the tree is ever looked at. A missing component, or one that is not a directory, is
    /// taken as a plain name, as BuildKit's rootPath does (the caller's lstat of the result then finds nothing).
    /// </summary>
    /// <param name="tree">Where the components are looked up.</param>
    /// <param name="path">Slash path; a leading '/' means the tree's root.</param>
    /// <param name="followFinal">Whether a symlink in the last component is followed too.</param>
    /// <param name="confined">
    /// A build context is confined: <c>..</c> above the root or an absolute symlink target leaves it
    /// (<see cref="PathResolution.Escapes"/>). A root filesystem is not: there <c>/</c> is its own root and <c>..</c>
    /// stops at it, as in a chroot.
    /// </param>
    /// <param name="resolved">The path with no symlink left in it (when the result is <see cref="PathResolution.Resolved"/>).</param>
    public static PathResolution Resolve(ISourceTree tree, string path, bool followFinal, bool confined, out string resolved)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ArgumentNullException.ThrowIfNull(path);
        resolved = string.Empty;
        var pending = new Stack<string>(Split(path).Reverse());
        var parts = new List<string>();
        var links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
                else if (confined)
                {
                    return PathResolution.Escapes;
                }

                continue;
            }

            parts.Add(part);
            if (!followFinal && pending.All(p => p == "."))
            {
                break;
            }

            if (tree.Lstat(string.Join('/', parts)) is not { Type: ContextEntryType.Symlink } link)
            {
                continue;
            }

            parts.RemoveAt(parts.Count - 1);
            if (++links > MaxSymlinks)
            {
                return PathResolution.TooManyLinks;
            }

            var target = link.LinkTarget ?? string.Empty;
            if (target.StartsWith('/'))
            {
                if (confined)
                {
                    return PathResolution.Escapes;
                }

                parts.Clear();
            }

            foreach (var t in Split(target).Reverse())
            {
                pending.Push(t);
            }
        }

        resolved = string.Join('/', parts);
        return PathResolution.Resolved;
    }

    /// <summary>Whether a path, cleaned lexically (no symlinks), climbs above its root.</summary>
    public static bool EscapesLexically(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var depth = 0;
        foreach (var part in Split(path))
        {
            if (part == "..")
            {
                if (--depth < 0)
                {
                    return true;
                }
            }
            else if (part is not ("" or "."))
            {
                depth++;
            }
        }

        return false;
    }

    /// <summary>Lexically cleans a slash path into its components joined by '/': no leading slash, no dots.</summary>
    public static string Clean(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var parts = new List<string>();
        foreach (var part in Split(path))
        {
            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
            }
            else if (part is not ("" or "."))
            {
                parts.Add(part);
            }
        }

        return string.Join('/', parts);
    }

    public static string[] Split(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return path.Split('/', StringSplitOptions.RemoveEmptyEntries);
    }
}

/// <summary>How <see cref="ContextPath.Resolve"/> ended.</summary>
public enum PathResolution
{
    Resolved,

    /// <summary>A confined resolution would leave its root (<c>..</c> above it, an absolute symlink target).</summary>
    Escapes,

    /// <summary>More than <see cref="ContextPath.MaxSymlinks"/> symlinks: a loop.</summary>
    TooManyLinks,
}
