using Farm.Oci.IO;

using Farm.Dockerfile.Context;

namespace Farm.Worker.Copy;

/// <summary>
/// Writes copied entries into a target root filesystem: creates missing parents, replaces what is in the way,
/// and gives every entry its owner, mode and mtime. Holds the counters and the hardlink map of one instruction.
/// </summary>
internal sealed class TargetWriter
{
    private readonly Dictionary<(ulong Device, ulong Inode), string> _hardlinks = [];
    private long _files;
    private long _directories;
    private long _symlinks;
    private long _bytes;

    public TargetWriter(string targetRoot, FileOwner owner, ModeSpec? mode)
    {
        TargetRoot = Path.TrimEndingDirectorySeparator(Path.GetFullPath(targetRoot));
        Owner = owner;
        Mode = mode;
    }

    public string TargetRoot { get; }

    public FileOwner Owner { get; }

    public ModeSpec? Mode { get; }

    public CopyResult Result => new(_files, _directories, _symlinks, _bytes);

    /// <summary>Resolves a path of the image to a host path under the target root, as if chrooted there.</summary>
    public string Resolve(string imagePath, bool followFinal) =>
        RootedPath.Resolve(TargetRoot, imagePath, followFinal, confined: false)!;

    /// <summary>Creates the missing directories of an already resolved host path, owned like the copied files (BuildKit's MkdirAll).</summary>
    /// <returns>Whether the last directory was created.</returns>
    public bool EnsureDirectory(string hostPath, FileOwner owner)
    {
        if (!hostPath.StartsWith(TargetRoot, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{hostPath} is not under {TargetRoot}");
        }

        var current = TargetRoot;
        var created = false;
        foreach (var part in ContextPath.Split(hostPath[TargetRoot.Length..]))
        {
            current += "/" + part;
            var stat = UnixFile.Lstat(current);
            if (stat is { IsDirectory: true })
            {
                created = false;
                continue;
            }

            if (stat is not null)
            {
                throw new CopyDestinationException(
                    $"cannot create directory '{ImagePath(current)}' in the image: a file is in the way; remove it in an earlier step or choose another destination");
            }

            Directory.CreateDirectory(current);
            UnixFile.Lchown(current, owner.Uid, owner.Gid);
            UnixFile.Chmod(current, 0x1ED);
            _directories++;
            created = true;
        }

        return created;
    }

    /// <summary>Makes room for a non-directory at a host path: removes a file or symlink there, refuses to replace a directory.</summary>
    public void ClearForNonDirectory(string hostPath)
    {
        var existing = UnixFile.Lstat(hostPath);
        if (existing is null)
        {
            return;
        }

        if (existing.Value.IsDirectory)
        {
            throw new CopyDestinationException(
                $"cannot replace directory '{ImagePath(hostPath)}' in the image with a file; copy into it with a trailing '/' or remove it in an earlier step");
        }

        File.Delete(hostPath);
    }

    /// <summary>Copies one non-directory source entry (file, symlink, device, fifo) to a host path.</summary>
    public void CopyEntry(string source, FileStat stat, string target, FileOwner? ownerOverride = null)
    {
        var owner = ownerOverride ?? Owner;
        ClearForNonDirectory(target);
        switch (stat.Type)
        {
            case FileStat.Regular:
                if (stat.Nlink > 1 && _hardlinks.TryGetValue((stat.Device, stat.Inode), out var first))
                {
                    UnixFile.Link(first, target);
                    _files++;
                    return;
                }

                File.Copy(source, target, overwrite: false);
                ApplyMetadata(target, stat, owner, isDirectory: false);
                if (stat.Nlink > 1)
                {
                    _hardlinks[(stat.Device, stat.Inode)] = target;
                }

                _files++;
                _bytes += stat.Size;
                return;
            case FileStat.Symlink:
                File.CreateSymbolicLink(target, new FileInfo(source).LinkTarget ?? string.Empty);
                UnixFile.Lchown(target, owner.Uid, owner.Gid);
                UnixFile.SetTimes(target, stat.MtimeSeconds, stat.MtimeNanoseconds);
                _symlinks++;
                return;
            case FileStat.Fifo or FileStat.CharDevice or FileStat.BlockDevice:
                UnixFile.Mknod(target, stat.Type | stat.Permissions, stat.RdevMajor, stat.RdevMinor);
                ApplyMetadata(target, stat, owner, isDirectory: false);
                _files++;
                return;
            default:
                // Sockets belong to a running process; Docker skips them too.
                return;
        }
    }

    /// <summary>
    /// Copies the entries the resolver selected below a source directory (excludes applied, ordinal order) into a
    /// target directory that exists.
    /// </summary>
    /// <param name="sourceDir">Host path of the source directory.</param>
    /// <param name="children">Its selected entries (<see cref="SourceNode.Children"/>).</param>
    /// <param name="targetDir">Host path of the target directory.</param>
    /// <param name="cancellationToken">Stops between entries.</param>
    public void CopyTree(string sourceDir, IReadOnlyList<SourceNode> children, string targetDir, CancellationToken cancellationToken)
    {
        foreach (var node in children)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = node.Name;
            var source = sourceDir + "/" + name;
            var target = targetDir + "/" + name;
            var stat = node.Entry.Stat!.Value;
            if (!stat.IsDirectory)
            {
                CopyEntry(source, stat, target);
                continue;
            }

            var existing = UnixFile.Lstat(target);
            var into = target;
            if (existing is { IsSymlink: true })
            {
                // A directory symlink in the image (say /lib -> usr/lib) is followed, within the target root.
                var resolved = Resolve(ImagePath(target), followFinal: true);
                if (UnixFile.Lstat(resolved) is { IsDirectory: true })
                {
                    into = resolved;
                }
                else
                {
                    File.Delete(target);
                    existing = null;
                }
            }
            else if (existing is { IsDirectory: false })
            {
                File.Delete(target);
                existing = null;
            }

            if (existing is null)
            {
                Directory.CreateDirectory(into);
                _directories++;
            }

            CopyTree(source, node.Children, into, cancellationToken);
            if (into == target)
            {
                ApplyMetadata(target, stat, Owner, isDirectory: true);
            }
        }
    }

    /// <summary>Owner, then mode (chown clears setuid), then mtime.</summary>
    public void ApplyMetadata(string target, FileStat stat, FileOwner owner, bool isDirectory)
    {
        UnixFile.Lchown(target, owner.Uid, owner.Gid);
        var permissions = Mode?.Apply(stat.Permissions, isDirectory) ?? stat.Permissions;
        UnixFile.Chmod(target, permissions);
        UnixFile.SetTimes(target, stat.MtimeSeconds, stat.MtimeNanoseconds);
    }

    public void CountFile(long bytes)
    {
        _files++;
        _bytes += bytes;
    }

    public void CountDirectory() => _directories++;

    public void CountSymlink() => _symlinks++;

    /// <summary>The path inside the image of a host path under the target root, for messages.</summary>
    public string ImagePath(string hostPath) =>
        hostPath.Length <= TargetRoot.Length ? "/" : hostPath[TargetRoot.Length..];
}
