using Farm.Oci.IO;

using Farm.Dockerfile.Context;

namespace Farm.Worker.Copy;

/// <summary>
/// Resolves a path inside a root directory as if the process were chrooted there: symlinks are followed
/// component by component, an absolute symlink target starts again at the root, and <c>..</c> never climbs
/// above the root. Written by hand because the BCL has no rooted resolution (Go has os.Root and
/// continuity's fs.RootPath; .NET has nothing equivalent).
/// </summary>
internal static class RootedPath
{
    private const int MaxSymlinks = 255;

    /// <summary>
    /// Resolves <paramref name="path"/> (slash separated; a leading slash means the root) to a host path
    /// under <paramref name="root"/>.
    /// </summary>
    /// <param name="root">Absolute host path of the root.</param>
    /// <param name="path">Path inside the root.</param>
    /// <param name="followFinal">Whether a symlink in the last component is followed too.</param>
    /// <param name="confined">
    /// When true, leaving the root (<c>..</c> above it, an absolute symlink target) is an escape and the result is
    /// null; a build context is confined, a root filesystem is not (there <c>/</c> means its own root).
    /// </param>
    /// <returns>The host path, or null when a confined resolution would leave the root.</returns>
    public static string? Resolve(string root, string path, bool followFinal, bool confined)
    {
        root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        var pending = new LinkedList<string>(Split(path));
        var resolved = new List<string>();
        var links = 0;
        while (pending.First is { } node)
        {
            var part = node.Value;
            pending.RemoveFirst();
            if (part is "" or ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (resolved.Count == 0)
                {
                    if (confined)
                    {
                        return null;
                    }

                    continue;
                }

                resolved.RemoveAt(resolved.Count - 1);
                continue;
            }

            var candidate = Join(root, resolved, part);
            var isLast = pending.Count == 0 || pending.All(p => p is "" or ".");
            if (isLast && !followFinal)
            {
                resolved.Add(part);
                continue;
            }

            var stat = UnixFile.Lstat(candidate);
            if (stat is not { IsSymlink: true })
            {
                resolved.Add(part);
                continue;
            }

            if (++links > MaxSymlinks)
            {
                throw new IOException($"Too many levels of symbolic links resolving {path} under {root}");
            }

            var target = new FileInfo(candidate).LinkTarget ?? string.Empty;
            if (target.StartsWith('/'))
            {
                if (confined)
                {
                    return null;
                }

                resolved.Clear();
            }

            foreach (var t in Split(target).Reverse())
            {
                pending.AddFirst(t);
            }
        }

        return resolved.Count == 0 ? root : root + "/" + string.Join('/', resolved);
    }

    /// <summary>Whether a path, cleaned lexically (no symlinks), climbs above its root.</summary>
    public static bool EscapesLexically(string path) => ContextPath.EscapesLexically(path);

    /// <summary>Lexically cleans a slash path into its components (no leading slash, no dots).</summary>
    public static string Clean(string path) => ContextPath.Clean(path);

    public static string[] Split(string path) => ContextPath.Split(path);

    private static string Join(string root, List<string> parts, string last) =>
        parts.Count == 0 ? root + "/" + last : root + "/" + string.Join('/', parts) + "/" + last;
}
