using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Oci;
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
    public static Task<ContextIndex> PackAsync(
        string contextDirectory,
        PatternMatcher ignore,
        Stream tarOutput,
        IProgress<ContextProgress>? progress,
        CancellationToken cancellationToken) =>
        PackAsync(Plan(contextDirectory, ignore, cancellationToken), tarOutput, progress, cancellationToken);

    /// <summary>
    /// Packs <paramref name="contextDirectory"/> and stores its tar and its index in <paramref name="store"/> (what a
    /// coordinator reads a submitted build's context from); returns both descriptors.
    /// </summary>
    public static async Task<(Descriptor Tar, Descriptor Index)> PackAndStoreAsync(
        string contextDirectory,
        PatternMatcher ignore,
        IBlobStore store,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        using var tar = new MemoryStream();
        var index = await PackAsync(contextDirectory, ignore, tar, null, cancellationToken).ConfigureAwait(false);
        var tarDescriptor = new Descriptor { MediaType = MediaTypes.OciLayerTar, Digest = Digest.Sha256(tar.GetBuffer().AsSpan(0, (int)tar.Length)), Size = tar.Length };
        tar.Position = 0;
        await store.PutAsync(tarDescriptor, tar, cancellationToken).ConfigureAwait(false);
        var indexBytes = index.ToBytes();
        var indexDescriptor = new Descriptor { MediaType = ContextIndex.MediaType, Digest = Digest.Sha256(indexBytes), Size = indexBytes.Length };
        await store.PutAsync(indexDescriptor, new MemoryStream(indexBytes), cancellationToken).ConfigureAwait(false);
        return (tarDescriptor, indexDescriptor);
    }

    /// <summary>
    /// Walks the context and applies <c>.dockerignore</c> without reading any file: what <see cref="PackAsync(ContextPlan, Stream, IProgress{ContextProgress}?, CancellationToken)"/>
    /// will write, in tar order, each with its lstat.
    /// </summary>
    public static ContextPlan Plan(string contextDirectory, PatternMatcher ignore, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ignore);
        var root = new DirectoryInfo(Path.GetFullPath(contextDirectory));
        if (!root.Exists)
        {
            throw new BuildContextException(FarmErrorCodes.ContextNotFound, $"The build context '{contextDirectory}' does not exist or is not a directory. Pass the directory that holds your sources.");
        }

        var planned = new List<PlannedEntry>();
        Walk(root, string.Empty, ignore, planned, [], cancellationToken);
        return new ContextPlan(planned);
    }

    /// <summary>Writes the tar of <paramref name="plan"/>, reading and hashing each file once.</summary>
    public static async Task<ContextIndex> PackAsync(ContextPlan plan, Stream tarOutput, IProgress<ContextProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(tarOutput);
        var entries = new List<ContextEntry>(plan.Entries.Count);
        var state = new WalkState(progress);
        await using (var writer = new TarWriter(tarOutput, TarEntryFormat.Gnu, leaveOpen: true))
        {
            foreach (var item in plan.Entries)
            {
                cancellationToken.ThrowIfCancellationRequested();
                switch (item.Type)
                {
                    case ContextEntryType.Directory:
                        await WriteDirectoryAsync(writer, entries, item.Path, (DirectoryInfo)item.Info, cancellationToken).ConfigureAwait(false);
                        break;
                    case ContextEntryType.Symlink:
                        var target = item.LinkTarget!;
                        var link = new GnuTarEntry(TarEntryType.SymbolicLink, item.Path) { LinkName = target, ModificationTime = item.Info.LastWriteTimeUtc };
                        Normalize(link, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
                        await writer.WriteEntryAsync(link, cancellationToken).ConfigureAwait(false);
                        entries.Add(new ContextEntry(item.Path, ContextEntryType.Symlink, 0x1ff, 0, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(target))), target));
                        break;
                    default:
                        await WriteFileAsync(writer, entries, item.Path, (FileInfo)item.Info, state, cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
        }

        progress?.Report(new ContextProgress(state.Files, state.Bytes, Done: true));
        return new ContextIndex(entries);
    }

    private static void Walk(
        DirectoryInfo dir,
        string relative,
        PatternMatcher ignore,
        List<PlannedEntry> planned,
        List<(string Path, DirectoryInfo Dir)> pendingParents,
        CancellationToken cancellationToken)
    {
        FileSystemInfo[] children;
        try
        {
            children = dir.GetFileSystemInfos();
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BuildContextException(FarmErrorCodes.ContextUnreadable, $"Cannot read '{dir.FullName}' in the build context: {e.Message}. Fix its permissions or add it to .dockerignore.", e);
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
                    Walk(subdir, path, ignore, planned, pendingParents, cancellationToken);
                    if (pendingParents.Count > 0 && pendingParents[^1].Path == path)
                    {
                        // Nothing below was included: the directory stays out.
                        pendingParents.RemoveAt(pendingParents.Count - 1);
                    }
                }
                else
                {
                    FlushParents(planned, pendingParents);
                    planned.Add(Planned(path, ContextEntryType.Directory, subdir, null));
                    Walk(subdir, path, ignore, planned, [], cancellationToken);
                }

                continue;
            }

            if (excluded)
            {
                continue;
            }

            if (child.LinkTarget is { } target)
            {
                FlushParents(planned, pendingParents);
                planned.Add(Planned(path, ContextEntryType.Symlink, child, target));
            }
            else if (child is FileInfo file && UnixFile.Lstat(file.FullName) is { IsRegularFile: true } stat)
            {
                FlushParents(planned, pendingParents);
                planned.Add(new PlannedEntry(path, ContextEntryType.File, file, stat, null));
            }

            // Sockets, fifos and devices have no place in a build context: Docker skips them too.
        }
    }

    private static PlannedEntry Planned(string path, ContextEntryType type, FileSystemInfo info, string? target) =>
        new(path, type, info, UnixFile.LstatExisting(info.FullName), target);

    private static void FlushParents(List<PlannedEntry> planned, List<(string Path, DirectoryInfo Dir)> pending)
    {
        foreach (var (path, dir) in pending)
        {
            planned.Add(Planned(path, ContextEntryType.Directory, dir, null));
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
                throw new BuildContextException(FarmErrorCodes.ContextChangedWhilePacked, $"'{path}' changed size while the build context was packed. Stop whatever is writing it and build again.");
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

/// <summary>One entry a context will have, with its lstat (what a stat cache compares), before anything is read.</summary>
public sealed record PlannedEntry(string Path, ContextEntryType Type, FileSystemInfo Info, FileStat Stat, string? LinkTarget);

/// <summary>What <see cref="BuildContextPacker.Plan"/> found: the entries of the tar, in order.</summary>
public sealed class ContextPlan(IReadOnlyList<PlannedEntry> entries)
{
    public IReadOnlyList<PlannedEntry> Entries { get; } = entries;

    /// <summary>
    /// Everything the tar's bytes depend on except file contents: path, type, mode, size, modification time and link
    /// target of every entry, plus inode, device and change time, which move whenever a file's content is written
    /// (so equal fingerprints mean equal tars, as git's index and BuildKit's stat cache assume).
    /// </summary>
    public byte[] Fingerprint()
    {
        // Binary, length-prefixed strings: unambiguous, and no formatting code to compile on a warm rebuild's path.
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            foreach (var e in Entries)
            {
                var s = e.Stat;
                writer.Write((int)e.Type);
                writer.Write(s.Mode);
                writer.Write(s.Size);
                writer.Write(s.MtimeSeconds);
                writer.Write(s.MtimeNanoseconds);
                writer.Write(s.CtimeSeconds);
                writer.Write(s.CtimeNanoseconds);
                writer.Write(s.Inode);
                writer.Write(s.Device);
                writer.Write(e.Path);
                writer.Write(e.LinkTarget ?? string.Empty);
            }
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Whether some entry changed less than <paramref name="window"/> before <paramref name="now"/>: a write in the
    /// same clock tick could then leave its times unchanged, so such a fingerprint must not be trusted later.
    /// </summary>
    public bool ChangedSince(DateTimeOffset now, TimeSpan window)
    {
        var limit = (now - window).ToUnixTimeMilliseconds();
        return Entries.Any(e => Math.Max(Millis(e.Stat.MtimeSeconds, e.Stat.MtimeNanoseconds), Millis(e.Stat.CtimeSeconds, e.Stat.CtimeNanoseconds)) >= limit);
    }

    private static long Millis(long seconds, uint nanoseconds) => (seconds * 1000) + (nanoseconds / 1_000_000);
}

/// <summary>How far packing a context has come.</summary>
public sealed record ContextProgress(long Files, long Bytes, bool Done);

public enum ContextEntryType
{
    File,
    Directory,
    Symlink,

    /// <summary>A fifo, device or socket: never in a context index (the packer skips them), only in a stage's root.</summary>
    Other,
}

/// <summary>One entry of the context index. Sha256 is of the content, or of the target for a symlink; no times.</summary>
public sealed record ContextEntry(string Path, ContextEntryType Type, int Mode, long Size, string? Sha256, string? LinkTarget);

/// <summary>Every entry of a packed context, in tar order; serialized as JSON lines for the blob store.</summary>
public sealed class ContextIndex(IReadOnlyList<ContextEntry> entries)
{
    /// <summary>The media type of an index stored beside its context tar in a blob store.</summary>
    public const string MediaType = "application/vnd.farm.context.index.v1+jsonl";

    public IReadOnlyList<ContextEntry> Entries { get; } = entries;

    public byte[] ToBytes()
    {
        var buffer = new MemoryStream();
        foreach (var entry in Entries)
        {
            JsonSerializer.Serialize(buffer, entry, ContextIndexJson.Default.ContextEntry);
            buffer.WriteByte((byte)'\n');
        }

        return buffer.ToArray();
    }

    public static ContextIndex Parse(ReadOnlySpan<byte> bytes)
    {
        var list = new List<ContextEntry>();
        while (!bytes.IsEmpty)
        {
            var end = bytes.IndexOf((byte)'\n');
            var line = end < 0 ? bytes : bytes[..end];
            bytes = end < 0 ? [] : bytes[(end + 1)..];
            if (!line.IsEmpty)
            {
                list.Add(JsonSerializer.Deserialize(line, ContextIndexJson.Default.ContextEntry) ?? throw new FormatException("null entry in the context index"));
            }
        }

        return new ContextIndex(list);
    }
}

/// <summary>The index's JSON, generated at build time: no reflection on the path of every build.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContextEntry))]
internal sealed partial class ContextIndexJson : JsonSerializerContext;

/// <summary>The build context cannot be used as it is, or a COPY/ADD source cannot be selected from it.</summary>
public sealed class BuildContextException(string code, string message, Exception? inner = null) : FarmException(code, message, inner)
{
    /// <summary>The message without its code, for a caller that reports the same error with a type of its own.</summary>
    public string Detail { get; } = message;
}
