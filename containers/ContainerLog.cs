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

    /// <summary>
    /// One output stream of a foreground run: to the console and into the log. A console gone (closed pipe) only ends
    /// the copy to the console; stdout and stderr share the log through <paramref name="gate"/>.
    /// </summary>
    public sealed class Tee(Stream console, FileStream log, SemaphoreSlim gate) : WriteOnlyStream
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

            await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await log.WriteAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                await log.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
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
