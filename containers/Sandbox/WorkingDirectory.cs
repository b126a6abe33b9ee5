using Farm.Oci.IO;

namespace Farm.Containers.Sandbox;

/// <summary>Creates a working directory inside an image's root file system, as WORKDIR and RUN need it.</summary>
public static class WorkingDirectory
{
    /// <summary>
    /// Creates <paramref name="containerPath"/> and its missing parents (0755) under <paramref name="rootfs"/>, owned by
    /// <paramref name="owner"/> (the caller, root on a worker, when null). Directories that exist keep their owner and mode. BuildKit's rule for
    /// WORKDIR: the directories it creates belong to the stage's USER at that point
    /// (https://docs.docker.com/reference/dockerfile/#workdir).
    /// </summary>
    /// <exception cref="RootfsPathException">The path, or a directory on its way, is a file in the image.</exception>
    public static void Create(string rootfs, string containerPath, ResolvedUser? owner)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootfs);
        ArgumentNullException.ThrowIfNull(containerPath);
        var root = Path.GetFullPath(rootfs).TrimEnd('/');
        var path = RootfsPath.Resolve(root, containerPath);
        var status = UnixFile.Lstat(path);
        if (status is { IsDirectory: true })
        {
            return;
        }

        if (status is not null)
        {
            throw new RootfsPathException($"the working directory {containerPath} exists in the image but is not a directory; choose another WORKDIR.");
        }

        // Resolve has followed every symlink that exists, so creating the missing tail stays inside the rootfs.
        var current = root;
        foreach (var part in RootfsPath.Split(path[root.Length..]))
        {
            current += "/" + part;
            var s = UnixFile.Lstat(current);
            if (s is null)
            {
                Directory.CreateDirectory(current);
                if (owner is not null)
                {
                    UnixFile.Lchown(current, owner.Uid, owner.Gid);
                }

                UnixFile.Chmod(current, 0x1ED /* 0755 */);
            }
            else if (!s.Value.IsDirectory)
            {
                throw new RootfsPathException($"the working directory {containerPath} runs through a file in the image ({current[root.Length..]}); choose another WORKDIR.");
            }
        }
    }
}
