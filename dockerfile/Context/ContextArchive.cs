using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Farm.Contracts;

namespace Farm.Dockerfile.Context;

/// <summary>
/// A build context that comes as an archive (a tar on standard input, a tarball URL): detected as docker detects it
/// (gzip, bzip2, xz or zstd by their magic numbers, a tar by its header, else a Dockerfile as text) and unpacked into a
/// directory, refusing every entry that would land outside it. The CLI unpacks contexts it fetches or reads; a farm
/// unpacks the tarball contexts it fetches for its clients, with the same rules.
/// </summary>
public static class ContextArchive
{
    /// <summary>
    /// Unpacks <paramref name="input"/> into <paramref name="root"/> when it is a tar (compressed or not), as docker
    /// detects it; returns the text when it is a Dockerfile instead, null for a tar.
    /// </summary>
    public static Task<string?> UnpackAsync(string input, string source, string root, CancellationToken cancellationToken) =>
        UnpackAsync(input, source, root, long.MaxValue, cancellationToken);

    /// <summary>
    /// As <see cref="UnpackAsync(string, string, string, CancellationToken)"/>, reading at most
    /// <paramref name="maxUnpackedBytes"/> of tar once decompressed: a small download must not fill the disk.
    /// </summary>
    /// <exception cref="ContextArchiveTooLargeException">The archive is larger than that once decompressed (FARM1242).</exception>
    public static async Task<string?> UnpackAsync(string input, string source, string root, long maxUnpackedBytes, CancellationToken cancellationToken)
    {
        var head = new byte[512];
        int read;
        using (var file = File.OpenRead(input))
        {
            read = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        }

        var compression = Compression(head.AsSpan(0, read));
        if (compression is null && !IsTar(head.AsSpan(0, read)))
        {
            if (read == 0)
            {
                throw new NotAContextArchiveException(source, "empty");
            }

            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(await File.ReadAllBytesAsync(input, cancellationToken).ConfigureAwait(false)) is var text && !text.Contains('\0', StringComparison.Ordinal)
                    ? text
                    : throw new NotAContextArchiveException(source, "binary, and not a tar archive");
            }
            catch (DecoderFallbackException)
            {
                throw new NotAContextArchiveException(source, "binary, and not a tar archive");
            }
        }

        var decompressed = await OpenDecompressedAsync(input, compression, source, maxUnpackedBytes, cancellationToken).ConfigureAwait(false);
        var stream = new BoundedReadStream(decompressed, maxUnpackedBytes, source);
        await using (stream.ConfigureAwait(false))
        {
            await ExtractAsync(stream, source, root, cancellationToken).ConfigureAwait(false);
        }

        return null;
    }

    private static string? Compression(ReadOnlySpan<byte> head) => head switch
    {
        [0x1f, 0x8b, ..] => "gzip",
        [(byte)'B', (byte)'Z', (byte)'h', ..] => "bzip2",
        [0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00, ..] => "xz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        _ => null,
    };

    /// <summary>A tar header: <c>ustar</c> at 257, or (a v7 tar) a header whose checksum adds up.</summary>
    private static bool IsTar(ReadOnlySpan<byte> head)
    {
        if (head.Length < 512)
        {
            return false;
        }

        if (head[257..262].SequenceEqual("ustar"u8))
        {
            return true;
        }

        var recorded = Encoding.ASCII.GetString(head[148..156]).Trim('\0', ' ');
        long sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += i is >= 148 and < 156 ? ' ' : head[i];
        }

        return recorded.Length > 0 && recorded.All(c => c is >= '0' and <= '7') && Convert.ToInt64(recorded, 8) == sum;
    }

    private static async Task<Stream> OpenDecompressedAsync(string input, string? compression, string source, long maxUnpackedBytes, CancellationToken cancellationToken)
    {
        var file = File.OpenRead(input);
        switch (compression)
        {
            case null:
                return file;
            case "gzip":
                return new GZipStream(file, CompressionMode.Decompress);
            default:
            {
                // No BCL codec for bzip2, xz or zstd: their own command decompresses into a file beside the input.
                await file.DisposeAsync().ConfigureAwait(false);
                var tar = input + ".tar";
                var tool = compression == "zstd" ? "zstd" : compression;
                var start = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (var arg in new[] { "-dc", input })
                {
                    start.ArgumentList.Add(arg);
                }

                Process process;
                try
                {
                    process = Process.Start(start)!;
                }
                catch (System.ComponentModel.Win32Exception e)
                {
                    throw new NotAContextArchiveException(source, $"{compression}-compressed, and the {tool} command that decompresses it is not installed ({e.Message})");
                }

                using (process)
                {
                    var output = File.Create(tar);
                    await using (output.ConfigureAwait(false))
                    {
                        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
                        try
                        {
                            await new BoundedReadStream(process.StandardOutput.BaseStream, maxUnpackedBytes, source).CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                        }
                        catch (ContextArchiveTooLargeException)
                        {
                            process.Kill();
                            throw;
                        }

                        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                        if (process.ExitCode != 0)
                        {
                            throw new NotAContextArchiveException(source, $"not a {compression} stream {tool} can read ({(await errors.ConfigureAwait(false)).Trim()})");
                        }
                    }
                }

                return File.OpenRead(tar);
            }
        }
    }

    /// <summary>Extracts a context tar under <paramref name="root"/>, refusing any entry that would land outside it (FARM1220).</summary>
    public static async Task ExtractAsync(Stream tar, string source, string root, CancellationToken cancellationToken)
    {
        var rootFull = Path.GetFullPath(root);
        var reader = new TarReader(tar, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            while (true)
            {
                TarEntry? entry;
                try
                {
                    entry = await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new NotAContextArchiveException(source, $"a damaged tar archive ({e.Message})");
                }

                if (entry is null)
                {
                    break;
                }

                var name = entry.Name.Replace('\\', '/');
                while (name.StartsWith("./", StringComparison.Ordinal))
                {
                    name = name[2..];
                }

                if (name.Length == 0 || name == ".")
                {
                    continue;
                }

                var target = Inside(rootFull, name) ?? throw new ContextArchiveEscapeException(source, entry.Name);
                EnsureNoLinkOnTheWay(rootFull, target, source, entry.Name);
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(target);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        DeleteExisting(target);
                        await entry.ExtractToFileAsync(target, overwrite: true, cancellationToken).ConfigureAwait(false);
                        break;
                    case TarEntryType.SymbolicLink:
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        DeleteExisting(target);
                        // The link itself stays in the context; the packer stores it as a link, never follows it.
                        File.CreateSymbolicLink(target, entry.LinkName);
                        break;
                    case TarEntryType.HardLink:
                        var linked = Inside(rootFull, entry.LinkName.TrimStart('.', '/').Length == 0 ? "." : entry.LinkName) ?? throw new ContextArchiveEscapeException(source, entry.LinkName);
                        EnsureNoLinkOnTheWay(rootFull, linked, source, entry.LinkName);
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        DeleteExisting(target);
                        File.Copy(linked, target);
                        break;
                    default:
                        // Devices, fifos: nothing a context can carry into an image through COPY.
                        break;
                }

                if (entry.EntryType is not (TarEntryType.SymbolicLink or TarEntryType.HardLink) && !OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(target, entry.Mode & (UnixFileMode)0xFFF);
                }
            }
        }
    }

    private static string? Inside(string root, string name)
    {
        if (name.StartsWith('/'))
        {
            return null;
        }

        var full = Path.GetFullPath(Path.Combine(root, name));
        return full == root || full.StartsWith(root + "/", StringComparison.Ordinal) ? full.TrimEnd('/') : null;
    }

    /// <summary>No directory between the root and <paramref name="target"/> may be a symbolic link: writing through it would leave the root.</summary>
    private static void EnsureNoLinkOnTheWay(string root, string target, string source, string entry)
    {
        for (var parent = Path.GetDirectoryName(target); parent is not null && parent.Length > root.Length; parent = Path.GetDirectoryName(parent))
        {
            if (new FileInfo(parent).LinkTarget is not null)
            {
                throw new ContextArchiveEscapeException(source, entry);
            }
        }
    }

    private static void DeleteExisting(string path)
    {
        var info = new FileInfo(path);
        if (info.Exists || info.LinkTarget is not null)
        {
            info.Delete();
        }
    }
}

/// <summary>
/// Reads another stream up to a number of bytes and throws past it; written by hand because the BCL has no bounded
/// read-only wrapper. Disposes the stream it wraps.
/// </summary>
internal sealed class BoundedReadStream(Stream inner, long limit, string source) : Stream
{
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private int Count(int read)
    {
        _read += read;
        return _read > limit ? throw new ContextArchiveTooLargeException(source, limit) : read;
    }
}

/// <summary>A context archive is larger, once decompressed, than its reader accepts (FARM1242).</summary>
public sealed class ContextArchiveTooLargeException(string source, long limit)
    : FarmException(FarmErrorCodes.UrlContextTooLarge, $"the build context {GitSource.Redact(source)} is larger than the {limit} bytes this farm unpacks (Farm:Builds:UrlContexts:MaxBytes, as a tar once decompressed): make it smaller, or fetch it yourself and build the directory.");

/// <summary>A context on standard input or from a URL is neither a tar nor a Dockerfile (FARM5066).</summary>
public sealed class NotAContextArchiveException(string source, string reason)
    : FarmException(FarmErrorCodes.NotAContextArchive, $"the build context from {GitSource.Redact(source)} is {reason}: give a tar archive (plain, gzip, bzip2 or xz) holding the context and its Dockerfile, or a Dockerfile as text.")
{
    /// <summary>What the input is instead of an archive, as a clause.</summary>
    public string Reason { get; } = reason;
}

/// <summary>An entry of a context archive would land outside the context (FARM1220).</summary>
public sealed class ContextArchiveEscapeException(string source, string entry)
    : FarmException(FarmErrorCodes.ContextArchiveEscape, $"the build context archive from {GitSource.Redact(source)} has an entry '{entry}' that would land outside the context (an absolute path, '..' or a path through a symbolic link); nothing was built. Make the archive with paths relative to the context root.");
