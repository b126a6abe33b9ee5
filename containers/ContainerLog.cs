using Farm.Oci.IO;

namespace Farm.Containers;

/// <summary>
/// A container's output as <c>farm logs</c> shows it: the log file a detached container's supervisor writes, and a
/// foreground run without terminal copies its output into as well.
/// </summary>
internal static class ContainerLog
{
    /// <summary>
    /// Copies the log to <paramref name="output"/>, from its last <paramref name="tail"/> lines when given; with
    /// <paramref name="follow"/>, goes on copying what the container writes until <paramref name="isRunning"/> says it ended.
    /// </summary>
    public static async Task CopyAsync(string path, bool follow, int? tail, Func<bool> isRunning, Stream output, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            if (!follow)
            {
                return;
            }

            await using (File.Create(path).ConfigureAwait(false))
            {
            }
        }

        var log = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 81920, useAsync: true);
        await using (log.ConfigureAwait(false))
        {
            if (tail is { } lines)
            {
                log.Position = await TailStartAsync(log, lines, cancellationToken).ConfigureAwait(false);
            }

            while (true)
            {
                await log.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (!follow)
                {
                    return;
                }

                if (!isRunning())
                {
                    // What it wrote before ending.
                    await log.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }

                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Like <see cref="CopyAsync(string, bool, int?, Func{bool}, Stream, CancellationToken)"/>, line by line: only the
    /// lines dated at or after <paramref name="since"/> (docker's <c>--since</c>), each after its time in RFC 3339 with
    /// nanoseconds and a space when <paramref name="timestamps"/> (docker's <c>--timestamps</c>). A line's time is when
    /// its first byte reached the log (<see cref="Writer"/>); a log written before lines were dated has the log's own
    /// time for every line.
    /// </summary>
    public static async Task CopyLinesAsync(string path, bool follow, int? tail, DateTimeOffset? since, bool timestamps, Func<bool> isRunning, Stream output, CancellationToken cancellationToken)
    {
        if (!File.Exists(path) && !follow)
        {
            return;
        }

        if (!File.Exists(path))
        {
            await using (File.Create(path).ConfigureAwait(false))
            {
            }
        }

        var log = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 81920, useAsync: true);
        await using (log.ConfigureAwait(false))
        {
            var position = tail is { } lines ? await TailStartAsync(log, lines, cancellationToken).ConfigureAwait(false) : 0;
            var times = new LineTimes(TimesPath(path), File.GetLastWriteTimeUtc(path));
            var pending = new List<byte>();
            var buffer = new byte[65536];
            long lineStart = position;
            log.Position = position;
            while (true)
            {
                var ended = follow && !isRunning();
                int read;
                while ((read = await log.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    for (var i = 0; i < read; i++)
                    {
                        pending.Add(buffer[i]);
                        if (buffer[i] == (byte)'\n')
                        {
                            await EmitAsync(lineStart).ConfigureAwait(false);
                            lineStart += pending.Count;
                            pending.Clear();
                        }
                    }
                }

                if (!follow || ended)
                {
                    // A last line without its newline is a line (what the container wrote before it ended).
                    if (pending.Count > 0)
                    {
                        await EmitAsync(lineStart).ConfigureAwait(false);
                    }

                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }

                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            async Task EmitAsync(long start)
            {
                var at = times.At(start);
                if (since is { } from && at < from)
                {
                    return;
                }

                if (timestamps)
                {
                    await output.WriteAsync(System.Text.Encoding.ASCII.GetBytes(Rfc3339Nano(at) + " "), cancellationToken).ConfigureAwait(false);
                }

                await output.WriteAsync(pending.ToArray(), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A time as docker prints it with <c>--timestamps</c>: RFC 3339 in UTC with nine digits of fraction.</summary>
    public static string Rfc3339Nano(DateTimeOffset at) =>
        at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", System.Globalization.CultureInfo.InvariantCulture) + "00Z";

    /// <summary>The dates of a log's lines, read from its <see cref="TimesPath"/> file as far as it goes, again when asked past it.</summary>
    private sealed class LineTimes(string path, DateTime fallback)
    {
        private readonly SortedList<long, long> _byOffset = [];
        private long _read;

        public DateTimeOffset At(long offset)
        {
            if (!_byOffset.ContainsKey(offset))
            {
                Load();
            }

            if (_byOffset.TryGetValue(offset, out var ticks))
            {
                return new DateTimeOffset(ticks, TimeSpan.Zero);
            }

            // Undated (a log from before lines were dated): the latest time dated before it, else the log's own.
            var before = _byOffset.Keys.LastOrDefault(k => k < offset, -1);
            return before >= 0 ? new DateTimeOffset(_byOffset[before], TimeSpan.Zero) : new DateTimeOffset(fallback, TimeSpan.Zero);
        }

        private void Load()
        {
            if (!File.Exists(path))
            {
                return;
            }

            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            file.Position = _read;
            var record = new byte[16];
            while (file.Length - file.Position >= 16)
            {
                file.ReadExactly(record);
                _byOffset[System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(record)] = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(8));
                _read += 16;
            }
        }
    }

    /// <summary>
    /// Where the last <paramref name="lines"/> lines of <paramref name="log"/> start: read backwards in blocks, so a long
    /// log costs what the tail holds. A last line without its newline counts as a line, as docker counts it.
    /// </summary>
    private static async Task<long> TailStartAsync(FileStream log, int lines, CancellationToken cancellationToken)
    {
        var end = log.Length;
        if (lines == 0 || end == 0)
        {
            return end;
        }

        var buffer = new byte[65536];
        var newlines = 0;
        var position = end;
        while (position > 0)
        {
            var count = (int)Math.Min(buffer.Length, position);
            position -= count;
            log.Position = position;
            await log.ReadExactlyAsync(buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            for (var i = count - 1; i >= 0; i--)
            {
                // The newline that ends the file ends the last line; it starts no line of its own.
                if (buffer[i] != (byte)'\n' || position + i == end - 1)
                {
                    continue;
                }

                if (++newlines == lines)
                {
                    return position + i + 1;
                }
            }
        }

        return 0;
    }

    /// <summary>Opens the log for appending, shared with readers (<c>farm logs -f</c>) and with another writer's stream.</summary>
    public static FileStream OpenForAppend(string path) =>
        new(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);

    /// <summary>The file beside a log that dates its lines: 16 bytes per line, its offset and its time (UTC ticks), little-endian.</summary>
    public static string TimesPath(string logPath) => logPath + ".times";

    /// <summary>
    /// Appends a container's output to its log and dates every line that starts (<see cref="TimesPath"/>), as docker's
    /// log drivers time each line when they receive it: what <c>farm logs --since</c> and <c>--timestamps</c> read.
    /// stdout and stderr share one writer.
    /// </summary>
    public sealed class Writer : IAsyncDisposable
    {
        private readonly FileStream _log;
        private readonly FileStream _times;
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly TimeProvider _time;
        private bool _atLineStart;

        public Writer(string path, TimeProvider? time = null)
        {
            _log = OpenForAppend(path);
            _times = OpenForAppend(TimesPath(path));
            _time = time ?? TimeProvider.System;
            _atLineStart = _log.Length == 0 || LastByte(path) == (byte)'\n';
        }

        public async Task WriteAsync(ReadOnlyMemory<byte> buffer)
        {
            await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                var at = _time.GetUtcNow().UtcTicks;
                var start = _log.Length;
                var records = new List<byte>();
                var span = buffer.Span;
                for (var i = 0; i < span.Length; i++)
                {
                    if (_atLineStart)
                    {
                        var record = new byte[16];
                        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(record, start + i);
                        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(record.AsSpan(8), at);
                        records.AddRange(record);
                    }

                    _atLineStart = span[i] == (byte)'\n';
                }

                // The time first: a reader that sees a line's first byte finds its time.
                if (records.Count > 0)
                {
                    await _times.WriteAsync(records.ToArray(), CancellationToken.None).ConfigureAwait(false);
                    await _times.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }

                await _log.WriteAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                await _log.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _log.DisposeAsync().ConfigureAwait(false);
            await _times.DisposeAsync().ConfigureAwait(false);
            _gate.Dispose();
        }

        private static int LastByte(string path)
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (file.Length == 0)
            {
                return -1;
            }

            file.Position = file.Length - 1;
            return file.ReadByte();
        }
    }

    /// <summary>
    /// One output stream of a foreground run: to the console and into the log. A console gone (closed pipe) only ends
    /// the copy to the console; stdout and stderr share the log's <paramref name="log"/> writer.
    /// </summary>
    public sealed class Tee(Stream console, Writer log) : WriteOnlyStream
    {
        private bool _toConsole = true;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_toConsole)
            {
                try
                {
                    await console.WriteAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                    await console.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (IOException)
                {
                    _toConsole = false;
                }
            }

            await log.WriteAsync(buffer).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }
    }
}
