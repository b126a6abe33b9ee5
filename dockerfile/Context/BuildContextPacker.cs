using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Farm.Contracts;
using Farm.Oci.IO;
using Farm.Dockerfile.Ignore;

namespace Farm.Dockerfile.Context;

/// <summary>
/// Packs a build context: walks the directory, applies <c>.dockerignore</c>, and writes (a) a deterministic tar and
/// (b) the context index (path, type, mode, size and sha256 of every entry) in one read of each file.
/// </summary>
/// <remarks>
/// The tar is the same bytes for the same tree on any machine: entries in ordinal order, parents first, owners
/// 0:0 with no names (COPY sets ownership anyway), GNU format (PAX would name each extended header after the writing
/// process id, so two processes would write different bytes). Modification times are kept, as Docker keeps them on
/// COPY; cache keys come from the index, which has no times.
/// https://docs.docker.com/build/concepts/context/
/// </remarks>
public static class BuildContextPacker
{
    public static async Task<ContextIndex> PackAsync(
        string contextDirectory,
        PatternMatcher ignore,
        Stream tarOutput,
        IProgress<ContextProgress>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ignore);
        ArgumentNullException.ThrowIfNull(tarOutput);
        var root = new DirectoryInfo(Path.GetFullPath(contextDirectory));
        if (!root.Exists)
        {
            throw new BuildContextException("FARM1201", $"The build context '{contextDirectory}' does not exist or is not a directory. Pass the directory that holds your sources.");
        }

        var entries = new List<ContextEntry>();
        var state = new WalkState(progress);
        await using (var writer = new TarWriter(tarOutput, TarEntryFormat.Gnu, leaveOpen: true))
        {
            await WalkAsync(root, string.Empty, ignore, writer, entries, new List<(string, DirectoryInfo)>(), state, cancellationToken).ConfigureAwait(false);
        }

        progress?.Report(new ContextProgress(state.Files, state.Bytes, Done: true));
        return new ContextIndex(entries);
    }

    private static async Task WalkAsync(
        DirectoryInfo dir,
        string relative,
        PatternMatcher ignore,
        TarWriter writer,
        List<ContextEntry> entries,
        List<(string Path, DirectoryInfo Dir)> pendingParents,
        WalkState state,
        CancellationToken cancellationToken)
    {
        FileSystemInfo[] children;
        try
        {
            children = dir.GetFileSystemInfos();
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BuildContextException("FARM1202", $"Cannot read '{dir.FullName}' in the build context: {e.Message}. Fix its permissions or add it to .dockerignore.", e);
        }

        Array.Sort(children, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var child in children)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var path = relative.Length == 0 ? child.Name : relative + "/" + child.Name;
            var excluded = ignore.Matches(path);
            if (child is DirectoryInfo subdir && child.LinkTarget is null)
            {
                if (excluded && ignore.CanSkipDirectory(path))
                {
                    continue;
                }

                if (excluded)
                {
                    // An exception pattern may re-include something below: emit this directory only if it does.
                    pendingParents.Add((path, subdir));
                    await WalkAsync(subdir, path, ignore, writer, entries, pendingParents, state, cancellationToken).ConfigureAwait(false);
                    if (pendingParents.Count > 0 && pendingParents[^1].Path == path)
                    {
                        // Nothing below was included: the directory stays out.
                        pendingParents.RemoveAt(pendingParents.Count - 1);
                    }
                }
                else
                {
                    await FlushParentsAsync(writer, entries, pendingParents, cancellationToken).ConfigureAwait(false);
                    await WriteDirectoryAsync(writer, entries, path, subdir, cancellationToken).ConfigureAwait(false);
                    await WalkAsync(subdir, path, ignore, writer, entries, [], state, cancellationToken).ConfigureAwait(false);
                }

                continue;
            }

            if (excluded)
            {
                continue;
            }

            if (child.LinkTarget is { } target)
            {
                await FlushParentsAsync(writer, entries, pendingParents, cancellationToken).ConfigureAwait(false);
                var link = new GnuTarEntry(TarEntryType.SymbolicLink, path) { LinkName = target, ModificationTime = child.LastWriteTimeUtc };
                Normalize(link, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
                await writer.WriteEntryAsync(link, cancellationToken).ConfigureAwait(false);
                entries.Add(new ContextEntry(path, ContextEntryType.Symlink, 0x1ff, 0, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(target))), target));
            }
            else if (child is FileInfo file && IsRegular(file))
            {
                await FlushParentsAsync(writer, entries, pendingParents, cancellationToken).ConfigureAwait(false);
                await WriteFileAsync(writer, entries, path, file, state, cancellationToken).ConfigureAwait(false);
            }

            // Sockets, fifos and devices have no place in a build context: Docker skips them too.
        }
    }

    private static async Task FlushParentsAsync(TarWriter writer, List<ContextEntry> entries, List<(string Path, DirectoryInfo Dir)> pending, CancellationToken cancellationToken)
    {
        foreach (var (path, dir) in pending)
        {
            await WriteDirectoryAsync(writer, entries, path, dir, cancellationToken).ConfigureAwait(false);
        }

        pending.Clear();
    }

    private static async Task WriteDirectoryAsync(TarWriter writer, List<ContextEntry> entries, string path, DirectoryInfo dir, CancellationToken cancellationToken)
    {
        var entry = new GnuTarEntry(TarEntryType.Directory, path + "/") { ModificationTime = dir.LastWriteTimeUtc };
        Normalize(entry, dir.UnixFileMode);
        await writer.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
        entries.Add(new ContextEntry(path, ContextEntryType.Directory, (int)dir.UnixFileMode, 0, null, null));
    }

    private static async Task WriteFileAsync(TarWriter writer, List<ContextEntry> entries, string path, FileInfo file, WalkState state, CancellationToken cancellationToken)
    {
        var stream = new FileStream(file.FullName, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Options = FileOptions.SequentialScan, BufferSize = 0 });
        await using (stream.ConfigureAwait(false))
        {
            using var hashing = new HashingReadStream(stream, leaveOpen: true);
            var entry = new GnuTarEntry(TarEntryType.RegularFile, path) { ModificationTime = file.LastWriteTimeUtc, DataStream = hashing };
            Normalize(entry, file.UnixFileMode);
            await writer.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            if (hashing.BytesRead != file.Length)
            {
                throw new BuildContextException("FARM1204", $"'{path}' changed size while the build context was packed. Stop whatever is writing it and build again.");
            }

            entries.Add(new ContextEntry(path, ContextEntryType.File, (int)file.UnixFileMode, file.Length, hashing.Digest().Encoded, null));
            state.Add(file.Length);
        }
    }

    private static void Normalize(PosixTarEntry entry, UnixFileMode mode)
    {
        entry.Mode = mode;
        entry.Uid = 0;
        entry.Gid = 0;
        entry.UserName = string.Empty;
        entry.GroupName = string.Empty;
    }

    // FileInfo also describes fifos, sockets and devices; only regular files can be read into the tar.
    private static bool IsRegular(FileInfo file) =>
        UnixFile.Lstat(file.FullName) is { IsRegularFile: true };

    private sealed class WalkState(IProgress<ContextProgress>? progress)
    {
        private long _lastReport;

        public long Files { get; private set; }

        public long Bytes { get; private set; }

        public void Add(long bytes)
        {
            Files++;
            Bytes += bytes;
            if (progress is not null && Bytes - _lastReport >= 8 << 20)
            {
                _lastReport = Bytes;
                progress.Report(new ContextProgress(Files, Bytes, Done: false));
            }
        }
    }
}

/// <summary>How far packing a context has come.</summary>
public sealed record ContextProgress(long Files, long Bytes, bool Done);

public enum ContextEntryType
{
    File,
    Directory,
    Symlink,
}

/// <summary>One entry of the context index. Sha256 is of the content, or of the target for a symlink; no times.</summary>
public sealed record ContextEntry(string Path, ContextEntryType Type, int Mode, long Size, string? Sha256, string? LinkTarget);

/// <summary>Every entry of a packed context, in tar order; serialized as JSON lines for the blob store.</summary>
public sealed class ContextIndex(IReadOnlyList<ContextEntry> entries)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public IReadOnlyList<ContextEntry> Entries { get; } = entries;

    public byte[] ToBytes()
    {
        var buffer = new MemoryStream();
        foreach (var entry in Entries)
        {
            JsonSerializer.Serialize(buffer, entry, Json);
            buffer.WriteByte((byte)'\n');
        }

        return buffer.ToArray();
    }

    public static ContextIndex Parse(ReadOnlySpan<byte> bytes)
    {
        var list = new List<ContextEntry>();
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            list.Add(JsonSerializer.Deserialize<ContextEntry>(line, Json) ?? throw new FormatException("null entry in the context index"));
        }

        return new ContextIndex(list);
    }
}

/// <summary>The build context cannot be used as it is.</summary>
public sealed class BuildContextException(string code, string message, Exception? inner = null) : FarmException(code, message, inner);
