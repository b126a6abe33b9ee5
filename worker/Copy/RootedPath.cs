using Farm.Dockerfile.Context;

namespace Farm.Worker.Copy;

/// <summary>
/// Resolves a path inside a root directory on disk as if the process were chrooted there, with the one resolution
/// COPY sources and cache keys use (<see cref="ContextPath.Resolve"/>): for a COPY's target root, ADD's archive
/// destination and <c>--chown</c>'s /etc/passwd lookup.
/// </summary>
internal static class RootedPath
{
    /// <summary>
    /// Resolves <paramref name="path"/> (slash separated; a leading slash means the root) to a host path under
    /// <paramref name="root"/>.
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
        var tree = new DirectorySourceTree(root);
        return ContextPath.Resolve(tree, path, followFinal, confined, out var resolved) switch
        {
            PathResolution.Resolved => tree.HostPath(resolved),
            PathResolution.Escapes => null,
            _ => throw new IOException($"Too many levels of symbolic links resolving {path} under {root}"),
        };
    }
}
