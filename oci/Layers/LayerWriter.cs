using System.Security.Cryptography;
using System.Text;

using Farm.Oci.IO;

namespace Farm.Oci.Layers;

/// <summary>Where a layer's tree comes from.</summary>
public enum LayerSourceKind
{
    /// <summary>A plain directory: a full root filesystem or a tree of changed files, written as is.</summary>
    Directory,

    /// <summary>
    /// An overlayfs upperdir: character devices 0/0 become <c>.wh.&lt;name&gt;</c> whiteouts and directories marked
    /// opaque get a <c>.wh..wh..opq</c> entry.
    /// </summary>
    OverlayUpperDir,
}

/// <summary>How <see cref="LayerWriter"/> packs a layer.</summary>
public sealed record LayerWriteOptions
{
    public LayerCompression Compression { get; init; } = LayerCompression.Gzip;

    /// <summary>Compression level; null for the defaults (gzip 6, zstd 3).</summary>
    public int? Level { get; init; }

    /// <summary>SOURCE_DATE_EPOCH: modification times later than this are written as this.</summary>
    public DateTimeOffset? ClampTimestamp { get; init; }

    /// <summary>Writes every modification time as 0 (1970-01-01).</summary>
    public bool ZeroTimestamps { get; init; }

    /// <summary>Uses the Docker v2 schema 2 media type for gzip layers instead of the OCI one.</summary>
    public bool DockerMediaType { get; init; }

    /// <summary>Threads compressing at once. The output bytes do not depend on it.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>A written layer: its descriptor (digest and size of the compressed blob) and its diff_id.</summary>
/// <param name="Descriptor">Media type, sha256 and size of the bytes written to the destination.</param>
/// <param name="DiffId">sha256 of the uncompressed tar, for the image config's rootfs.diff_ids.</param>
/// <param name="UncompressedSize">Bytes of the uncompressed tar.</param>
/// <param name="EntryCount">Tar entries, whiteouts included; 0 means the tree had no changes.</param>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/config.md#layer-diffid</remarks>
public sealed record LayerResult(Descriptor Descriptor, Digest DiffId, long UncompressedSize, int EntryCount)
{
    /// <summary>True when the layer holds no entry, so the step can record an empty layer instead.</summary>
    public bool IsEmpty => EntryCount == 0;
}

/// <summary>
/// Writes a directory or an overlayfs upperdir as a reproducible OCI layer in one streaming pass.
/// </summary>
/// <remarks>
/// <para>https://github.com/opencontainers/image-spec/blob/main/layer.md</para>
/// <para>
/// Reproducible: entries in ordinal byte order of names, depth first, parents before children; numeric owners
/// only; whole-second times, optionally clamped; PAX headers only where ustar cannot hold a value; gzip header
/// without name or time. Tar generation, compression (several threads) and both sha256 hashes overlap.
/// </para>
/// </remarks>
public static class LayerWriter
{
    /// <summary>Writes <paramref name="directory"/> as a layer to <paramref name="destination"/>.</summary>
    public static Task<LayerResult> WriteAsync(
        string directory, LayerSourceKind kind, Stream destination, LayerWriteOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(options);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"The layer source directory '{directory}' does not exist.");
        }

        var pipeline = new LayerPipeline(destination, options);
        var walker = new TreeWalker(Path.GetFullPath(directory), kind, options, pipeline);
        return pipeline.RunAsync(walker.Run, cancellationToken);
    }

    /// <summary>Writes an overlayfs upperdir as a layer, turning overlay whiteouts into OCI whiteouts.</summary>
    public static Task<LayerResult> WriteUpperDirAsync(
        string upperDir, Stream destination, LayerWriteOptions options, CancellationToken cancellationToken) =>
        WriteAsync(upperDir, LayerSourceKind.OverlayUpperDir, destination, options, cancellationToken);

    /// <summary>Writes a plain directory tree as a layer.</summary>
    public static Task<LayerResult> WriteDirectoryAsync(
        string directory, Stream destination, LayerWriteOptions options, CancellationToken cancellationToken) =>
        WriteAsync(directory, LayerSourceKind.Directory, destination, options, cancellationToken);

    private sealed class TreeWalker(string root, LayerSourceKind kind, LayerWriteOptions options, LayerPipeline sink)
    {
        private readonly Dictionary<(uint Major, uint Minor, ulong Inode), string> _hardlinks = [];
        private readonly long? _clamp = options.ClampTimestamp?.ToUnixTimeSeconds();
        private readonly Action<ReadOnlySpan<byte>> _write = sink.Write;
        private int _entries;

        public int Run(CancellationToken cancellationToken)
        {
            WalkDirectory(root, string.Empty, cancellationToken);
            Span<byte> end = stackalloc byte[TarFormat.BlockSize * 2];
            end.Clear();
            sink.Write(end);
            return _entries;
        }

        private void WalkDirectory(string fullDir, string relDir, CancellationToken cancellationToken)
        {
            var upper = kind == LayerSourceKind.OverlayUpperDir;
            var children = new List<(byte[] Key, string Name, FileStat Stat)>();
            foreach (var path in Directory.EnumerateFileSystemEntries(fullDir))
            {
                var name = Path.GetFileName(path);
                var errno = Interop.Lstat(Interop.AtFdCwd, path, out var st);
                if (errno == Interop.ENOENT)
                {
                    continue; // vanished between readdir and lstat: it is not part of the tree any more
                }

                if (errno != 0)
                {
                    throw new LayerIoException("statx", path, errno);
                }

                // Sorted by the name the entry gets in the tar, so a whiteout sorts as ".wh.<name>".
                var tarName = upper && IsWhiteout(st) ? ".wh." + name : name;
                children.Add((Encoding.UTF8.GetBytes(tarName), name, st));
            }

            // Byte order of UTF-8 names per directory, depth first: parents precede children, and the order is
            // what Go and GNU tools sort by (string ordinal order differs above U+E000).
            children.Sort((a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
            foreach (var (_, name, st) in children)
            {
                cancellationToken.ThrowIfCancellationRequested();
                EmitEntry(Path.Join(fullDir, name), relDir + name, relDir, name, st, cancellationToken);
            }
        }

        private static bool IsWhiteout(FileStat st) => st.Type == Interop.SIfChr && st.RdevMajor == 0 && st.RdevMinor == 0;

        private long Mtime(long seconds) =>
            options.ZeroTimestamps ? 0 : _clamp is { } clamp && seconds > clamp ? clamp : Math.Max(0, seconds);

        private void EmitEntry(string full, string rel, string relDir, string name, FileStat st, CancellationToken cancellationToken)
        {
            var type = st.Type;
            if (type == Interop.SIfSock)
            {
                return; // a tar cannot hold a socket; docker and buildkit skip them too
            }

            var upper = kind == LayerSourceKind.OverlayUpperDir;
            if (upper && IsWhiteout(st))
            {
                Emit(new TarHeader { Name = relDir + ".wh." + name, TypeFlag = TarHeader.Regular, MtimeSeconds = Mtime(st.MtimeSeconds) });
                return;
            }

            var xattrs = Interop.ListXattrs(full);
            var opaque = false;
            foreach (var key in xattrs.Keys.ToList())
            {
                var overlayName = key.StartsWith("trusted.overlay.", StringComparison.Ordinal) ? key["trusted.overlay.".Length..]
                    : key.StartsWith("user.overlay.", StringComparison.Ordinal) ? key["user.overlay.".Length..]
                    : null;
                if (overlayName is null)
                {
                    continue;
                }

                // overlayfs bookkeeping is never part of the image.
                var value = xattrs[key];
                xattrs.Remove(key);
                if (!upper)
                {
                    continue;
                }

                if (overlayName is "redirect" or "metacopy")
                {
                    throw new UnsupportedOverlayFeatureException(full, key);
                }

                opaque |= overlayName == "opaque" && value is [(byte)'y'];
            }

            var h = new TarHeader
            {
                Name = rel,
                Mode = st.Permissions,
                Uid = st.Uid,
                Gid = st.Gid,
                MtimeSeconds = Mtime(st.MtimeSeconds),
                Xattrs = xattrs.Count > 0 ? xattrs : null,
            };

            switch (type)
            {
                case Interop.SIfDir:
                    h.Name = rel + "/";
                    h.TypeFlag = TarHeader.Directory;
                    Emit(h);
                    if (opaque)
                    {
                        Emit(new TarHeader { Name = rel + "/.wh..wh..opq", TypeFlag = TarHeader.Regular, MtimeSeconds = h.MtimeSeconds });
                    }

                    WalkDirectory(full, rel + "/", cancellationToken);
                    return;
                case Interop.SIfReg:
                    if (st.Nlink > 1)
                    {
                        var key = (st.DevMajor, st.DevMinor, st.Inode);
                        if (_hardlinks.TryGetValue(key, out var first))
                        {
                            h.TypeFlag = TarHeader.HardLink;
                            h.LinkName = first;
                            Emit(h);
                            return;
                        }

                        _hardlinks[key] = rel;
                    }

                    h.TypeFlag = TarHeader.Regular;
                    h.Size = st.Size;
                    Emit(h);
                    WriteContent(full, st.Size);
                    return;
                case Interop.SIfLnk:
                    h.TypeFlag = TarHeader.SymLink;
                    h.LinkName = new FileInfo(full).LinkTarget ?? string.Empty;
                    Emit(h);
                    return;
                case Interop.SIfChr or Interop.SIfBlk:
                    h.TypeFlag = type == Interop.SIfChr ? TarHeader.CharDevice : TarHeader.BlockDevice;
                    h.DevMajor = st.RdevMajor;
                    h.DevMinor = st.RdevMinor;
                    Emit(h);
                    return;
                case Interop.SIfIfo:
                    h.TypeFlag = TarHeader.Fifo;
                    Emit(h);
                    return;
                default:
                    return;
            }
        }

        private void Emit(TarHeader header)
        {
            _entries++;
            TarFormat.WriteHeader(header, _write);
        }

        private void WriteContent(string path, long size)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            long offset = 0;
            while (offset < size)
            {
                var span = sink.GetSpan();
                if (span.Length > size - offset)
                {
                    span = span[..(int)(size - offset)];
                }

                var n = RandomAccess.Read(handle, span, offset);
                if (n == 0)
                {
                    // The file shrank after lstat: the header already promised `size` bytes, so pad with zeros
                    // rather than corrupt the archive. (A step still writing while we pack is a worker bug.)
                    span.Clear();
                    n = span.Length;
                }

                sink.Advance(n);
                offset += n;
            }

            TarFormat.WritePadding(size, _write);
        }
    }
}

/// <summary>
/// Tar bytes in, compressed bytes out, in one pass: the walker fills 1 MiB chunks on its own thread, chunks are
/// compressed concurrently (gzip) or fed to libzstd's worker threads (zstd), and one consumer thread hashes the
/// tar (diff_id) and the compressed bytes (digest) and writes them in order.
/// </summary>
internal sealed class LayerPipeline(Stream destination, LayerWriteOptions options)
{
    // Part of the output format for gzip (each chunk ends in a sync flush), so fixed, never tuned per machine.
    private const int ChunkSize = 1 << 20;

    private static readonly byte[] GzipHeader = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

    private readonly int _parallelism = Math.Max(1, options.Parallelism);
    private System.Collections.Concurrent.BlockingCollection<Task<Chunk>>? _queue;
    private CancellationToken _token;
    private byte[] _current = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkSize);
    private int _used;

    private sealed record Chunk(byte[] Raw, int RawLength, byte[]? Output, int OutputLength, bool Final);

    public Span<byte> GetSpan()
    {
        if (_used == ChunkSize)
        {
            Submit(final: false);
        }

        return _current.AsSpan(_used, ChunkSize - _used);
    }

    public void Advance(int count) => _used += count;

    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var span = GetSpan();
            var n = Math.Min(span.Length, data.Length);
            data[..n].CopyTo(span);
            _used += n;
            data = data[n..];
        }
    }

    private void Submit(bool final)
    {
        var raw = _current;
        var length = _used;
        var level = options.Level ?? 6;
        var task = options.Compression == LayerCompression.Gzip
            ? Task.Run(() => Deflate(raw, length, final, level))
            : Task.FromResult(new Chunk(raw, length, null, 0, final));
        _queue!.Add(task, _token);
        // Pooled: fresh 1 MiB arrays live on the large object heap and would cost a gen2 GC every few chunks.
        _current = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkSize);
        _used = 0;
    }

    private static Chunk Deflate(byte[] raw, int length, bool final, int level)
    {
        var output = new MemoryStream((length / 2) + 4096);
        int outputLength;
        using (var deflate = new System.IO.Compression.DeflateStream(
            output, new System.IO.Compression.ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: true))
        {
            deflate.Write(raw, 0, length);
            // A sync flush ends the piece on a byte boundary with a non-final block, so independently compressed
            // pieces concatenate into one valid deflate stream (the pigz technique). Only the last piece is finished.
            deflate.Flush();
            outputLength = (int)output.Length;
        }

        if (final)
        {
            outputLength = (int)output.Length;
        }

        return new Chunk(raw, length, output.GetBuffer(), outputLength, final);
    }

    public async Task<LayerResult> RunAsync(Func<CancellationToken, int> produce, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _token = cts.Token;
        using var queue = new System.Collections.Concurrent.BlockingCollection<Task<Chunk>>(_parallelism + 2);
        _queue = queue;
        var entries = 0;
        var producer = Task.Factory.StartNew(
            () =>
            {
                try
                {
                    entries = produce(_token);
                    Submit(final: true);
                }
                finally
                {
                    queue.CompleteAdding();
                }
            },
            _token,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
        var consumer = Task.Factory.StartNew(
            () =>
            {
                try
                {
                    return Consume(queue, _token);
                }
                catch
                {
                    cts.Cancel(); // unblocks a producer waiting for room in the queue
                    throw;
                }
            },
            _token,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        try
        {
            await producer.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (consumer.IsFaulted)
        {
            // the consumer's failure is the one to report
        }

        var (diffId, digest, uncompressed, compressed) = await consumer.ConfigureAwait(false);
        var descriptor = new Descriptor
        {
            MediaType = MediaTypes.LayerMediaType(options.Compression, options.DockerMediaType),
            Digest = digest,
            Size = compressed,
        };
        return new LayerResult(descriptor, diffId, uncompressed, entries);
    }

    private (Digest DiffId, Digest Digest, long Uncompressed, long Compressed) Consume(
        System.Collections.Concurrent.BlockingCollection<Task<Chunk>> queue, CancellationToken cancellationToken)
    {
        using var diffHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var blobHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var crc = new Crc32();
        long uncompressed = 0;
        long compressed = 0;
        using var zstd = options.Compression == LayerCompression.Zstd
            ? new ZstdEncoder(options.Level ?? Zstd.DefaultLevel, _parallelism)
            : null;

        void Emit(byte[] buffer, int count)
        {
            blobHash.AppendData(buffer, 0, count);
            destination.Write(buffer, 0, count);
            compressed += count;
        }

        var first = true;
        foreach (var task in queue.GetConsumingEnumerable(cancellationToken))
        {
            var chunk = task.GetAwaiter().GetResult();
            diffHash.AppendData(chunk.Raw, 0, chunk.RawLength);
            uncompressed += chunk.RawLength;
            switch (options.Compression)
            {
                case LayerCompression.None:
                    Emit(chunk.Raw, chunk.RawLength);
                    break;
                case LayerCompression.Gzip:
                    if (first)
                    {
                        Emit(GzipHeader, GzipHeader.Length);
                    }

                    crc.Append(chunk.Raw.AsSpan(0, chunk.RawLength));
                    Emit(chunk.Output!, chunk.OutputLength);
                    if (chunk.Final)
                    {
                        var trailer = new byte[8];
                        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(trailer, crc.Value);
                        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(4), (uint)uncompressed);
                        Emit(trailer, trailer.Length);
                    }

                    break;
                case LayerCompression.Zstd:
                    zstd!.Compress(chunk.Raw.AsSpan(0, chunk.RawLength), chunk.Final, Emit);
                    break;
                default:
                    throw new InvalidOperationException($"Unknown layer compression {options.Compression}.");
            }

            first = false;
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk.Raw);
        }

        destination.Flush();
        return (
            Digest.FromHash("sha256", diffHash.GetHashAndReset()),
            Digest.FromHash("sha256", blobHash.GetHashAndReset()),
            uncompressed,
            compressed);
    }
}
