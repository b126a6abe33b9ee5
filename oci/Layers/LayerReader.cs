using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Farm.Oci.IO;
using Microsoft.Win32.SafeHandles;

namespace Farm.Oci.Layers;

/// <summary>How <see cref="LayerReader"/> applies a layer.</summary>
public sealed record LayerApplyOptions
{
    /// <summary>The layer's compression; null to detect it from the first bytes.</summary>
    public LayerCompression? Compression { get; init; }

    /// <summary>
    /// Creates block and character devices with mknod, as docker, containerd and buildah do for a base layer (a
    /// debootstrapped root file system has <c>dev/console</c>, <c>dev/null</c> ...); refused by default (FARM2105).
    /// Only a caller whose containers keep a device cgroup rule that denies them (the sandbox's
    /// <c>linux.resources.devices</c>) should allow them: a node in a file system is not a right to use the device.
    /// </summary>
    public bool AllowDevices { get; init; }

    /// <summary>Sets owners from the layer (needs root); when false files belong to the caller.</summary>
    public bool PreserveOwners { get; init; } = true;

    /// <summary>
    /// Writes an overlayfs lower directory instead of merging: whiteouts become character devices 0/0 and opaque
    /// markers the <c>trusted.overlay.opaque=y</c> xattr, so the directory can be stacked as a lowerdir.
    /// Apply each layer to its own empty directory in this mode.
    /// </summary>
    public bool OverlayLowerDir { get; init; }
}

/// <summary>What applying a layer did.</summary>
/// <param name="DiffId">sha256 of the uncompressed tar, to check against the image config's diff_ids.</param>
/// <param name="UncompressedSize">Bytes of the uncompressed tar.</param>
/// <param name="EntryCount">Tar entries read, whiteouts included.</param>
public sealed record LayerApplyResult(Digest DiffId, long UncompressedSize, int EntryCount);

/// <summary>
/// Applies an OCI layer onto a directory, processing whiteouts, and refuses anything that could touch a file
/// outside that directory.
/// </summary>
/// <remarks>
/// <para>https://github.com/opencontainers/image-spec/blob/main/layer.md#applying-changesets</para>
/// <para>
/// Every path is resolved one component at a time with <c>openat(O_NOFOLLOW)</c> from a descriptor of the target
/// directory, so the kernel never follows a symlink, whatever the layer or the directory holds (the guarantee of
/// openat2's RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, on any kernel). An entry beneath a symlink whose target is relative
/// and stays inside the root (<c>lib -&gt; usr/lib</c>, then <c>lib/x</c>, as tars of merged-/usr systems have) is
/// applied where the link leads, as containerd applies it: the link's target is read and spliced into the path,
/// which is resolved again from the root the same way. A link with an absolute target, or one whose <c>..</c> climbs
/// above the root, is refused (FARM2103): on the worker it would lead outside the root. Each entry is validated
/// before anything is written for it.
/// </para>
/// </remarks>
public static class LayerReader
{
    private const string OpaqueMarker = ".wh..wh..opq";
    private const string WhiteoutPrefix = ".wh.";

    // As the kernel's limit on symlinks in one lookup (MAXSYMLINKS): a loop ends in FARM2103.
    private const int MaxSymlinks = 40;

    /// <summary>Applies <paramref name="layer"/> (compressed or not) onto <paramref name="targetDirectory"/>.</summary>
    public static Task<LayerApplyResult> ApplyAsync(
        Stream layer, string targetDirectory, LayerApplyOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(targetDirectory);
        ArgumentNullException.ThrowIfNull(options);
        return Task.Factory.StartNew(
            () => Apply(layer, targetDirectory, options, cancellationToken),
            cancellationToken,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    /// <summary>Wraps <paramref name="layer"/> in the decompressor it needs, detected from its magic bytes when not given.</summary>
    public static Stream OpenDecompressed(Stream layer, LayerCompression? compression)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var head = new byte[4];
        var n = layer.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var detected = n >= 2 && head[0] == 0x1f && head[1] == 0x8b ? LayerCompression.Gzip
            : n == 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd ? LayerCompression.Zstd
            : LayerCompression.None;
        if (compression is { } expected && expected != detected)
        {
            throw new LayerCompressionException($"The layer was declared {expected} but its first bytes say {detected}.");
        }

        var whole = new PrefixedStream(head.AsMemory(0, n), layer);
        return detected switch
        {
            LayerCompression.Gzip => new GZipStream(whole, CompressionMode.Decompress),
            LayerCompression.Zstd => new ZstdDecompressStream(whole),
            _ => whole,
        };
    }

    private static LayerApplyResult Apply(Stream layer, string targetDirectory, LayerApplyOptions options, CancellationToken cancellationToken)
    {
        using var hashing = new HashingReadStream(OpenDecompressed(layer, options.Compression));
        var root = Interop.OpenAt(Interop.AtFdCwd, targetDirectory, Interop.ORdOnly | Interop.ODirectory | Interop.OCloExec, 0);
        if (root < 0)
        {
            throw new LayerIoException("open target directory", targetDirectory, Marshal.GetLastPInvokeError());
        }

        try
        {
            var applier = new Applier(root, options);
            var reader = new TarStreamReader(hashing);
            var entries = 0;
            try
            {
                while (reader.Next() is { } header)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    applier.Apply(header, reader);
                    entries++;
                }
            }
            catch (InvalidDataException e)
            {
                throw new LayerCompressionException("The gzip stream of the layer is corrupt.", e);
            }

            applier.FinishDirectoryTimes();
            hashing.CopyTo(Stream.Null); // diff_id covers the whole tar, padding after the end marker included
            return new LayerApplyResult(hashing.Digest(), hashing.BytesRead, entries);
        }
        finally
        {
            Interop.Close(root);
        }
    }

    private sealed class Applier(int root, LayerApplyOptions options)
    {
        private readonly HashSet<string> _written = new(StringComparer.Ordinal);
        private readonly HashSet<string> _ancestors = new(StringComparer.Ordinal);
        private readonly List<(string[] Path, string Name, long Mtime)> _directoryTimes = [];
        private readonly byte[] _buffer = new byte[1 << 17];

        public void Apply(TarHeader h, TarStreamReader reader)
        {
            var path = Normalize(h.Name, h.Name, isLink: false);
            if (path.Length == 0)
            {
                return; // the root itself ("./"): the target directory's own metadata belongs to the caller
            }

            var leaf = path[^1];
            var parentPath = path[..^1];

            if (h.TypeFlag is TarHeader.CharDevice or TarHeader.BlockDevice && !options.AllowDevices)
            {
                throw new LayerDeviceNotAllowedException(h.Name);
            }

            string[]? linkPath = null;
            if (h.TypeFlag == TarHeader.HardLink)
            {
                linkPath = Normalize(h.LinkName, h.Name, isLink: true);
                if (linkPath.Length == 0)
                {
                    throw new LayerHardlinkTargetException(h.Name, h.LinkName, "is the root directory");
                }
            }

            var (parent, resolvedParent) = Resolve(parentPath, h.Name, create: true);
            path = [.. resolvedParent, leaf];
            try
            {
                if (leaf == OpaqueMarker)
                {
                    Opaque(parent, string.Join('/', resolvedParent));
                    return;
                }

                if (leaf.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
                {
                    var hidden = leaf[WhiteoutPrefix.Length..];
                    if (hidden is "" or "." or ".." || hidden.Contains('/', StringComparison.Ordinal))
                    {
                        throw new InvalidLayerTarException($"The whiteout '{h.Name}' names no file.");
                    }

                    Whiteout(parent, string.Join('/', [.. resolvedParent, hidden]));
                    return;
                }

                var linkParent = -1;
                var linkLeaf = string.Empty;
                if (linkPath is not null)
                {
                    (linkParent, linkLeaf) = ResolveHardlinkTarget(h, linkPath);
                }

                try
                {
                    Record(string.Join('/', path));
                    Create(h, reader, parent, leaf, path, linkParent, linkLeaf);
                }
                finally
                {
                    if (linkParent >= 0)
                    {
                        Interop.Close(linkParent);
                    }
                }
            }
            finally
            {
                Interop.Close(parent);
            }
        }

        private void Create(TarHeader h, TarStreamReader reader, int parent, string leaf, string[] path, int linkParent, string linkLeaf)
        {
            var exists = Interop.Lstat(parent, leaf, out var existing) == 0;
            if (exists && !(h.TypeFlag == TarHeader.Directory && existing.Type == Interop.SIfDir))
            {
                RemoveAt(parent, leaf, h.Name);
                exists = false;
            }

            switch (h.TypeFlag)
            {
                case TarHeader.Directory:
                    if (!exists)
                    {
                        Check(Interop.MkdirAt(parent, leaf, 0x1C0 /* 0700 */), "mkdir", h.Name);
                    }

                    break;
                case TarHeader.Regular:
                    WriteFile(h, reader, parent, leaf);
                    break;
                case TarHeader.SymLink:
                    // The target is stored as written; later entries beneath it resolve it inside the root (Resolve).
                    Check(Interop.SymlinkAt(h.LinkName, parent, leaf), "symlink", h.Name);
                    break;
                case TarHeader.HardLink:
                    Check(Interop.LinkAt(linkParent, linkLeaf, parent, leaf, 0), "link", h.Name);
                    return; // the inode's metadata is the target's
                case TarHeader.CharDevice or TarHeader.BlockDevice:
                    var kind = h.TypeFlag == TarHeader.CharDevice ? Interop.SIfChr : Interop.SIfBlk;
                    Check(Interop.MknodAt(parent, leaf, kind | 0x180 /* 0600 */, Interop.MakeDev(h.DevMajor, h.DevMinor)), "mknod", h.Name);
                    break;
                case TarHeader.Fifo:
                    Check(Interop.MknodAt(parent, leaf, Interop.SIfIfo | 0x180 /* 0600 */, 0), "mkfifo", h.Name);
                    break;
                default:
                    throw new InvalidLayerTarException($"Layer entry '{h.Name}' has an unsupported type.");
            }

            SetMetadata(h, parent, leaf, path);
        }

        private void WriteFile(TarHeader h, TarStreamReader reader, int parent, string leaf)
        {
            var fd = Interop.OpenAt(parent, leaf, Interop.OWrOnly | Interop.OCreat | Interop.OExcl | Interop.ONoFollow | Interop.OCloExec, 0x180 /* 0600 */);
            Check(fd < 0 ? -1 : 0, "create", h.Name);
            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            long offset = 0;
            int n;
            while ((n = reader.Read(_buffer)) > 0)
            {
                RandomAccess.Write(handle, _buffer.AsSpan(0, n), offset);
                offset += n;
            }
        }

        private void SetMetadata(TarHeader h, int parent, string leaf, string[] path)
        {
            var symlink = h.TypeFlag == TarHeader.SymLink;
            if (options.PreserveOwners)
            {
                Check(Interop.FchownAt(parent, leaf, (uint)h.Uid, (uint)h.Gid, Interop.AtSymlinkNoFollow), "lchown", h.Name);
            }

            if (!symlink)
            {
                // After chown, which clears setuid and setgid. Safe without NOFOLLOW: we just made it, not a link.
                Check(Interop.FchmodAt(parent, leaf, h.Mode & 0xFFF, 0), "chmod", h.Name);
            }

            if (h.Xattrs is not null)
            {
                // The parent's descriptor pins the directory; only the last component is looked up, without following.
                var viaFd = $"/proc/self/fd/{parent}/{leaf}";
                foreach (var (name, value) in h.Xattrs)
                {
                    var errno = Interop.SetXattr(viaFd, name, value);
                    if (errno != 0)
                    {
                        throw new LayerIoException($"setxattr {name}", h.Name, errno);
                    }
                }
            }

            if (h.TypeFlag == TarHeader.Directory)
            {
                // Creating children changes a directory's mtime, so directories get theirs at the end.
                _directoryTimes.Add((path[..^1], leaf, h.MtimeSeconds));
                return;
            }

            Check(Interop.UtimensAt(parent, leaf, h.MtimeSeconds, Interop.AtSymlinkNoFollow), "utimensat", h.Name);
        }

        public void FinishDirectoryTimes()
        {
            for (var i = _directoryTimes.Count - 1; i >= 0; i--)
            {
                var (parentPath, leaf, mtime) = _directoryTimes[i];
                var name = string.Join('/', [.. parentPath, leaf]);
                var (parent, _) = Resolve(parentPath, name, create: false);
                try
                {
                    if (Interop.Lstat(parent, leaf, out var st) == 0 && st.Type == Interop.SIfDir)
                    {
                        Check(Interop.UtimensAt(parent, leaf, mtime, Interop.AtSymlinkNoFollow), "utimensat", name);
                    }
                }
                finally
                {
                    Interop.Close(parent);
                }
            }
        }

        private (int Parent, string Leaf) ResolveHardlinkTarget(TarHeader h, string[] linkPath)
        {
            int parent;
            try
            {
                (parent, _) = Resolve(linkPath[..^1], h.Name, create: false);
            }
            catch (LayerSymlinkTraversalException)
            {
                throw new LayerHardlinkTargetException(h.Name, h.LinkName, "lies beneath a symbolic link");
            }
            catch (LayerIoException e) when (e.Errno == Interop.ENOENT)
            {
                throw new LayerHardlinkTargetException(h.Name, h.LinkName, "does not exist");
            }

            var leaf = linkPath[^1];
            if (Interop.Lstat(parent, leaf, out var st) != 0)
            {
                Interop.Close(parent);
                throw new LayerHardlinkTargetException(h.Name, h.LinkName, "does not exist");
            }

            if (st.Type == Interop.SIfDir)
            {
                Interop.Close(parent);
                throw new LayerHardlinkTargetException(h.Name, h.LinkName, "is a directory");
            }

            return (parent, leaf);
        }

        /// <summary>
        /// Opens the directory at <paramref name="path"/> under the root without letting the kernel follow any symlink;
        /// returns it with the path it really is (symlinks inside the root resolved).
        /// </summary>
        private (int Fd, string[] Path) Resolve(string[] path, string entryName, bool create)
        {
            var links = 0;
        Restart:
            var current = Interop.OpenAt(root, ".", Interop.OPath | Interop.ODirectory | Interop.OCloExec, 0);
            Check(current < 0 ? -1 : 0, "open root", entryName);
            for (var i = 0; i < path.Length; i++)
            {
                var next = Interop.OpenAt(current, path[i], Interop.OPath | Interop.ODirectory | Interop.ONoFollow | Interop.OCloExec, 0);
                if (next < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    var soFar = string.Join('/', path[..(i + 1)]);
                    if (errno == Interop.ENOENT && create)
                    {
                        // A parent the layer does not list, as tar itself creates it; it counts as this layer's.
                        var mk = Interop.MkdirAt(current, path[i], 0x1ED /* 0755 */);
                        var mkErrno = mk == 0 ? 0 : Marshal.GetLastPInvokeError();
                        Record(soFar);
                        next = Interop.OpenAt(current, path[i], Interop.OPath | Interop.ODirectory | Interop.ONoFollow | Interop.OCloExec, 0);
                        errno = next < 0 ? Marshal.GetLastPInvokeError() : 0;
                        if (next < 0 && mkErrno != 0)
                        {
                            errno = mkErrno;
                        }
                    }

                    if (next < 0)
                    {
                        var isLink = Interop.Lstat(current, path[i], out var st) == 0 && st.Type == Interop.SIfLnk;
                        var target = isLink ? Interop.ReadLinkAt(current, path[i]) : null;
                        Interop.Close(current);
                        if (isLink)
                        {
                            if (++links > MaxSymlinks || target is null || FollowInsideRoot(path, i, target) is not { } followed)
                            {
                                throw new LayerSymlinkTraversalException(entryName, soFar);
                            }

                            path = followed;
                            goto Restart;
                        }

                        if (errno == Interop.ENOTDIR)
                        {
                            throw new LayerEntryConflictException(entryName, $"'{soFar}' is not a directory");
                        }

                        throw new LayerIoException("open directory", soFar, errno);
                    }
                }

                Interop.Close(current);
                current = next;
            }

            return (current, path);
        }

        /// <summary>
        /// <paramref name="path"/> with its component <paramref name="index"/>, a symlink to <paramref name="target"/>,
        /// replaced by where the link leads; null when that is not inside the root (an absolute target, or <c>..</c>
        /// above the root). Lexical <c>..</c> is exact here: every component before <paramref name="index"/> was opened
        /// as a real directory.
        /// </summary>
        private static string[]? FollowInsideRoot(string[] path, int index, string target)
        {
            if (target.Length == 0 || target.StartsWith('/') || target.Contains('\0', StringComparison.Ordinal))
            {
                return null;
            }

            var parts = new List<string>(path[..index]);
            foreach (var part in target.Split('/'))
            {
                if (part is "" or ".")
                {
                    continue;
                }

                if (part == "..")
                {
                    if (parts.Count == 0)
                    {
                        return null;
                    }

                    parts.RemoveAt(parts.Count - 1);
                    continue;
                }

                parts.Add(part);
            }

            parts.AddRange(path[(index + 1)..]);
            return [.. parts];
        }

        private void Record(string path)
        {
            _written.Add(path);
            for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
            {
                if (!_ancestors.Add(path[..slash]))
                {
                    break;
                }
            }
        }

        private void Whiteout(int parent, string hiddenPath)
        {
            var leaf = hiddenPath[(hiddenPath.LastIndexOf('/') + 1)..];
            if (options.OverlayLowerDir)
            {
                RemoveAt(parent, leaf, hiddenPath);
                Check(Interop.MknodAt(parent, leaf, Interop.SIfChr, 0), "mknod whiteout", hiddenPath);
                return;
            }

            // Whiteouts hide lower layers only; an entry of this same layer stays.
            if (!_written.Contains(hiddenPath) && !_ancestors.Contains(hiddenPath))
            {
                RemoveAt(parent, leaf, hiddenPath);
            }
        }

        private void Opaque(int directory, string directoryPath)
        {
            if (options.OverlayLowerDir)
            {
                // "/." makes the lookup go through the magic link to the directory itself, which O_PATH fsetxattr cannot do.
                var errno = Interop.SetXattr($"/proc/self/fd/{directory}/.", "trusted.overlay.opaque", "y"u8.ToArray());
                if (errno != 0)
                {
                    throw new LayerIoException("setxattr trusted.overlay.opaque", directoryPath, errno);
                }

                return;
            }

            PruneLower(directory, directoryPath);
        }

        /// <summary>Removes everything under the directory that this layer did not write.</summary>
        private void PruneLower(int directory, string directoryPath)
        {
            foreach (var name in ListNames(directory))
            {
                var child = directoryPath.Length == 0 ? name : directoryPath + "/" + name;
                if (_ancestors.Contains(child) || (_written.Contains(child) && IsDirectory(directory, name)))
                {
                    var fd = Interop.OpenAt(directory, name, Interop.OPath | Interop.ODirectory | Interop.ONoFollow | Interop.OCloExec, 0);
                    Check(fd < 0 ? -1 : 0, "open directory", child);
                    try
                    {
                        PruneLower(fd, child);
                    }
                    finally
                    {
                        Interop.Close(fd);
                    }
                }
                else if (!_written.Contains(child))
                {
                    RemoveAt(directory, name, child);
                }
            }
        }

        private static bool IsDirectory(int directory, string name) =>
            Interop.Lstat(directory, name, out var st) == 0 && st.Type == Interop.SIfDir;

        private static List<string> ListNames(int directory) =>
            [.. Directory.EnumerateFileSystemEntries($"/proc/self/fd/{directory}").Select(Path.GetFileName).OfType<string>()];

        /// <summary>Deletes a file or a whole tree relative to a directory descriptor, never following symlinks.</summary>
        private static void RemoveAt(int directory, string name, string displayPath)
        {
            if (Interop.Lstat(directory, name, out var st) != 0)
            {
                return;
            }

            if (st.Type == Interop.SIfDir)
            {
                var fd = Interop.OpenAt(directory, name, Interop.ORdOnly | Interop.ODirectory | Interop.ONoFollow | Interop.OCloExec, 0);
                Check(fd < 0 ? -1 : 0, "open directory", displayPath);
                try
                {
                    foreach (var child in ListNames(fd))
                    {
                        RemoveAt(fd, child, displayPath + "/" + child);
                    }
                }
                finally
                {
                    Interop.Close(fd);
                }

                Check(Interop.UnlinkAt(directory, name, Interop.AtRemoveDir), "rmdir", displayPath);
                return;
            }

            Check(Interop.UnlinkAt(directory, name, 0), "unlink", displayPath);
        }

        private static void Check(int rc, string operation, string path)
        {
            if (rc != 0)
            {
                throw new LayerIoException(operation, path, Marshal.GetLastPInvokeError());
            }
        }

        /// <summary>Splits a tar name into components, refusing absolute names and '..' that climbs above the root.</summary>
        private static string[] Normalize(string name, string entryName, bool isLink)
        {
            if (name.StartsWith('/'))
            {
                throw isLink
                    ? new LayerHardlinkTargetException(entryName, name, "is an absolute path outside the layer's root")
                    : new LayerAbsolutePathException(name);
            }

            if (name.Contains('\0', StringComparison.Ordinal))
            {
                throw new InvalidLayerTarException($"Layer entry name '{name}' contains a NUL byte.");
            }

            var parts = new List<string>();
            foreach (var part in name.Split('/'))
            {
                if (part is "" or ".")
                {
                    continue;
                }

                if (part == "..")
                {
                    if (parts.Count == 0)
                    {
                        throw isLink
                            ? new LayerHardlinkTargetException(entryName, name, "lies outside the layer's root")
                            : new LayerPathEscapeException(name);
                    }

                    parts.RemoveAt(parts.Count - 1);
                    continue;
                }

                parts.Add(part);
            }

            return [.. parts];
        }
    }
}
