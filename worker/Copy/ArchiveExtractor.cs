using System.Formats.Tar;
using System.IO.Compression;
using SharpCompress.Compressors;
using SharpCompress.Compressors.BZip2;
using SharpCompress.Compressors.Xz;

using Farm.Dockerfile.Context;
using Farm.Oci.IO;

namespace Farm.Worker.Copy;

/// <summary>
/// ADD's local-archive rule: a tar, plain or compressed with gzip, bzip2, xz or zstd (recognised by content,
/// never by name), is extracted into the destination instead of copied.
/// See https://docs.docker.com/reference/dockerfile/#adding-local-tar-archives.
/// </summary>
/// <remarks>
/// Safety: the archive is read twice. The first pass refuses entries that climb out with <c>..</c>, relative
/// symlinks that point above the destination, and entries written through a symlink the archive itself creates,
/// so a refused archive leaves nothing behind. The second pass resolves every path inside the destination as if
/// chrooted there, so even symlinks already in the image cannot lead outside. Leading <c>/</c> in entry names is
/// dropped, as Docker and GNU tar do.
/// </remarks>
internal static class ArchiveExtractor
{
    private static ReadOnlySpan<byte> GzipMagic => [0x1F, 0x8B];

    private static ReadOnlySpan<byte> Bzip2Magic => "BZh"u8;

    private static ReadOnlySpan<byte> XzMagic => [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];

    private static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xB5, 0x2F, 0xFD];

    /// <summary>Whether a regular file is a tar archive that ADD extracts.</summary>
    public static bool IsArchive(string path)
    {
        try
        {
            using var stream = OpenDecompressed(path);
            using var reader = new TarReader(stream);
            return reader.GetNextEntry() is not null;
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            // Whatever fails to parse is not an archive: ADD then copies it as a plain file, like Docker.
            return false;
        }
    }

    /// <summary>Refuses an archive with any entry that could escape; writes nothing.</summary>
    public static void Validate(string path, string displayName, CancellationToken cancellationToken)
    {
        var symlinks = new HashSet<string>(StringComparer.Ordinal);
        using var stream = OpenDecompressed(path);
        using var reader = new TarReader(stream);
        while (Next(reader, displayName) is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
            {
                continue;
            }

            if (ContextPath.EscapesLexically(entry.Name))
            {
                throw new UnsafeArchiveException(displayName, entry.Name, "climbs out of the destination with '..'");
            }

            var name = ContextPath.Clean(entry.Name);
            var parts = ContextPath.Split(name);
            for (var i = 1; i < parts.Length; i++)
            {
                var parent = string.Join('/', parts[..i]);
                if (symlinks.Contains(parent))
                {
                    throw new UnsafeArchiveException(displayName, entry.Name, $"would be written through the symlink '{parent}' that the archive itself creates");
                }
            }

            switch (entry.EntryType)
            {
                case TarEntryType.SymbolicLink:
                    var target = entry.LinkName;
                    var dir = parts.Length > 1 ? string.Join('/', parts[..^1]) : string.Empty;
                    if (!target.StartsWith('/') && ContextPath.EscapesLexically(dir + "/" + target))
                    {
                        throw new UnsafeArchiveException(displayName, entry.Name, $"is a symlink to '{target}', outside the destination");
                    }

                    symlinks.Add(name);
                    break;
                case TarEntryType.HardLink:
                    if (ContextPath.EscapesLexically(entry.LinkName) || ContextPath.Clean(entry.LinkName).Length == 0)
                    {
                        throw new UnsafeArchiveException(displayName, entry.Name, $"is a hard link to '{entry.LinkName}', outside the destination");
                    }

                    break;
                case TarEntryType.Directory or TarEntryType.DirectoryList or TarEntryType.RegularFile or TarEntryType.V7RegularFile
                    or TarEntryType.ContiguousFile or TarEntryType.Fifo or TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                    symlinks.Remove(name);
                    break;
                default:
                    throw new UnsupportedSourceException($"ADD archive '{displayName}' has entry '{entry.Name}' of type {entry.EntryType}, which Farm cannot extract; repack the archive without it");
            }
        }
    }

    /// <summary>
    /// Extracts a validated archive into a directory under the target root. <paramref name="owner"/> is --chown,
    /// or null to keep the owners recorded in the archive (BuildKit's rule).
    /// </summary>
    public static void Extract(string path, string displayName, string destination, TargetWriter writer, FileOwner? owner, CancellationToken cancellationToken)
    {
        var directories = new List<(string Path, DateTimeOffset Time)>();
        using var stream = OpenDecompressed(path);
        using var reader = new TarReader(stream);
        while (Next(reader, displayName) is { } entry)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = ContextPath.Clean(entry.Name);
            if (name.Length == 0 || entry.EntryType is TarEntryType.GlobalExtendedAttributes)
            {
                continue;
            }

            var entryOwner = owner ?? new FileOwner((uint)entry.Uid, (uint)entry.Gid);
            var target = RootedPath.Resolve(destination, name, followFinal: false, confined: false)!;
            writer.EnsureDirectory(Path.GetDirectoryName(target)!, owner ?? FileOwner.Root);
            var mode = (uint)entry.Mode & 0xFFF;
            switch (entry.EntryType)
            {
                case TarEntryType.Directory or TarEntryType.DirectoryList:
                    var existing = UnixFile.Lstat(target);
                    if (existing is { IsDirectory: false })
                    {
                        File.Delete(target);
                    }

                    if (existing is not { IsDirectory: true })
                    {
                        Directory.CreateDirectory(target);
                        writer.CountDirectory();
                    }

                    UnixFile.Lchown(target, entryOwner.Uid, entryOwner.Gid);
                    UnixFile.Chmod(target, mode);
                    directories.Add((target, entry.ModificationTime));
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    writer.ClearForNonDirectory(target);
                    using (var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write))
                    {
                        entry.DataStream?.CopyTo(output);
                    }

                    SetMetadata(target, entryOwner, mode, entry.ModificationTime);
                    writer.CountFile(entry.Length);
                    break;
                case TarEntryType.SymbolicLink:
                    writer.ClearForNonDirectory(target);
                    File.CreateSymbolicLink(target, entry.LinkName);
                    UnixFile.Lchown(target, entryOwner.Uid, entryOwner.Gid);
                    UnixFile.SetTimes(target, entry.ModificationTime);
                    writer.CountSymlink();
                    break;
                case TarEntryType.HardLink:
                    var linked = RootedPath.Resolve(destination, ContextPath.Clean(entry.LinkName), followFinal: false, confined: false)!;
                    writer.ClearForNonDirectory(target);
                    UnixFile.Link(linked, target);
                    writer.CountFile(0);
                    break;
                default:
                    writer.ClearForNonDirectory(target);
                    var type = entry.EntryType switch
                    {
                        TarEntryType.Fifo => FileStat.Fifo,
                        TarEntryType.CharacterDevice => FileStat.CharDevice,
                        _ => FileStat.BlockDevice,
                    };
                    UnixFile.Mknod(target, type | mode, (uint)((PosixTarEntry)entry).DeviceMajor, (uint)((PosixTarEntry)entry).DeviceMinor);
                    SetMetadata(target, entryOwner, mode, entry.ModificationTime);
                    writer.CountFile(0);
                    break;
            }
        }

        // Directory mtimes last, deepest first: writing their contents changed them.
        for (var i = directories.Count - 1; i >= 0; i--)
        {
            UnixFile.SetTimes(directories[i].Path, directories[i].Time);
        }
    }

    private static void SetMetadata(string target, FileOwner owner, uint mode, DateTimeOffset mtime)
    {
        UnixFile.Lchown(target, owner.Uid, owner.Gid);
        UnixFile.Chmod(target, mode);
        UnixFile.SetTimes(target, mtime);
    }

    private static TarEntry? Next(TarReader reader, string displayName)
    {
        try
        {
            return reader.GetNextEntry();
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException or IOException or InvalidOperationException)
        {
            throw new UnsupportedSourceException($"ADD archive '{displayName}' is corrupt or truncated ({e.Message}); check the file", e);
        }
    }

    private static Stream OpenDecompressed(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> head = stackalloc byte[6];
            var read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            head = head[..read];
            file.Position = 0;
            if (head.StartsWith(GzipMagic))
            {
                return new GZipStream(file, System.IO.Compression.CompressionMode.Decompress);
            }

            if (head.StartsWith(Bzip2Magic))
            {
                return BZip2Stream.Create(file, SharpCompress.Compressors.CompressionMode.Decompress, decompressConcatenated: true, leaveOpen: false, tolerateTruncatedStream: false);
            }

            if (head.StartsWith(XzMagic))
            {
                return new XZStream(file);
            }

            if (head.StartsWith(ZstdMagic))
            {
                return new Farm.Oci.Layers.ZstdDecompressStream(file);
            }

            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
