using Farm.Oci.IO;

namespace Farm.Containers.Sandbox;

/// <summary>
/// Resolves a path inside an image's root file system the way the kernel would after chroot, so an
/// image symlink such as <c>/etc/passwd -> /../../host/file</c> cannot make the worker read or create
/// files outside the rootfs.
/// </summary>
public static class RootfsPath
{
    private const int MaxSymlinks = 40;

    /// <summary>
    /// The host path of <paramref name="containerPath"/> under <paramref name="rootfs"/>, every symlink resolved
    /// within the rootfs. Components that do not exist are appended as they are.
    /// </summary>
    public static string Resolve(string rootfs, string containerPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootfs);
        var root = Path.GetFullPath(rootfs).TrimEnd('/');
        var pending = new Stack<string>(Split(containerPath).Reverse());
        var resolved = new List<string>();
        var links = 0;

        while (pending.Count > 0)
        {
            var part = pending.Pop();
            if (part == "..")
            {
                if (resolved.Count > 0)
                {
                    resolved.RemoveAt(resolved.Count - 1);
                }

                continue;
            }

            var candidate = root + "/" + string.Join('/', resolved.Append(part));
            var status = UnixFile.Lstat(candidate);
            if (status is { IsSymlink: true })
            {
                if (++links > MaxSymlinks)
                {
                    throw new RootfsPathException($"too many levels of symbolic links resolving {containerPath} in the image; fix the image's symlinks.");
                }

                var target = new FileInfo(candidate).LinkTarget ?? "";
                if (target.StartsWith('/'))
                {
                    resolved.Clear();
                }

                foreach (var t in Split(target).Reverse())
                {
                    pending.Push(t);
                }

                continue;
            }

            resolved.Add(part);
        }

        return resolved.Count == 0 ? root : root + "/" + string.Join('/', resolved);
    }

    /// <summary>Components of a container path, without empty and <c>.</c> parts.</summary>
    internal static IEnumerable<string> Split(string path) =>
        path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".");
}
