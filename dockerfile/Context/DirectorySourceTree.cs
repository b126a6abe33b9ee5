using Farm.Oci.IO;

namespace Farm.Dockerfile.Context;

/// <summary>
/// A directory on disk as an <see cref="ISourceTree"/>: the worker's extracted build context, or a stage's root
/// filesystem for <c>COPY --from</c>, or the root a COPY writes into.
/// </summary>
/// <remarks>
/// Every call is one lstat (or one directory listing) of <c>root/path</c>. Paths come from
/// <see cref="ContextPath.Resolve"/>, which never hands over a path through a symlink, so no symlink is followed here
/// and nothing outside the root is reached; a path with <c>..</c> or a leading '/' is refused outright.
/// </remarks>
public sealed class DirectorySourceTree : ISourceTree
{
    private readonly int? _rootMode;

    /// <param name="root">The directory.</param>
    /// <param name="rootMode">
    /// Reports the root with this mode instead of its own: an extracted build context passes
    /// <see cref="ContextIndexTree.RootMode"/>, since the context tar says nothing of its root.
    /// </param>
    public DirectorySourceTree(string root, int? rootMode = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        Root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        _rootMode = rootMode;
    }

    /// <summary>The absolute host path of the root, without a trailing separator.</summary>
    public string Root { get; }

    /// <summary>The host path of a tree path.</summary>
    public string HostPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.StartsWith('/') || path == ".." || path.StartsWith("../", StringComparison.Ordinal)
            || path.EndsWith("/..", StringComparison.Ordinal) || path.Contains("/../", StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{path}' is not a path relative to {Root} without '..'; resolve it with ContextPath.Resolve first.", nameof(path));
        }

        return path.Length == 0 ? Root : Root + "/" + path;
    }

    public SourceEntry? Lstat(string path)
    {
        if (UnixFile.Lstat(HostPath(path)) is not { } stat)
        {
            return null;
        }

        if (path.Length == 0 && _rootMode is { } mode)
        {
            stat = stat with { Mode = (stat.Mode & FileStat.TypeMask) | ((uint)mode & 0xFFF) };
        }

        return stat.Type switch
        {
            FileStat.Regular => new SourceEntry(ContextEntryType.File, (int)stat.Permissions, stat.Size, null) { Stat = stat },
            FileStat.Directory => new SourceEntry(ContextEntryType.Directory, (int)stat.Permissions, 0, null) { Stat = stat },
            FileStat.Symlink => new SourceEntry(ContextEntryType.Symlink, (int)stat.Permissions, 0, new FileInfo(HostPath(path)).LinkTarget ?? string.Empty) { Stat = stat },
            _ => new SourceEntry(ContextEntryType.Other, (int)stat.Permissions, 0, null) { Stat = stat },
        };
    }

    public IEnumerable<string> List(string path)
    {
        var host = HostPath(path);
        if (path.Length == 0 ? !Directory.Exists(host) : UnixFile.Lstat(host) is not { IsDirectory: true })
        {
            return [];
        }

        return Directory.EnumerateFileSystemEntries(host).Select(Path.GetFileName).OfType<string>();
    }
}
