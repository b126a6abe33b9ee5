using System.Diagnostics;
using System.Threading.Channels;
using Farm.Oci.Layers;

namespace Farm.Containers.Runc;

/// <summary>
/// The copies between a runc process and a <see cref="ProcessIo"/>: input in, output out, terminal resizes passed on.
/// An output destination that fails cancels <c>stop</c>, so the executor kills the process.
/// </summary>
internal sealed class ProcessStreams : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly CancellationToken _cancellationToken;
    private readonly CancellationTokenSource _resizing = new();
    private Task _output = Task.CompletedTask;
    private Task _resizes = Task.CompletedTask;
    private PseudoTerminal? _terminal;
    private Exception? _outputError;

    private ProcessStreams(CancellationTokenSource stop, CancellationToken cancellationToken)
    {
        _stop = stop;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The first exception an output destination threw; null when all took everything.</summary>
    public Exception? OutputError => Volatile.Read(ref _outputError);

    /// <summary>Starts the copies for <paramref name="runc"/>, just started with <paramref name="terminal"/>'s slave as its streams, or pipes.</summary>
    /// <param name="runc">The runc process.</param>
    /// <param name="terminal">The pseudo-terminal, when the process has one.</param>
    /// <param name="io">What the process reads and where its output goes.</param>
    /// <param name="stop">Cancelled when an output destination fails.</param>
    /// <param name="cancellationToken">The caller's token, passed to the output destinations.</param>
    public static ProcessStreams Start(Process runc, PseudoTerminal? terminal, ProcessIo io, CancellationTokenSource stop, CancellationToken cancellationToken)
    {
        var streams = new ProcessStreams(stop, cancellationToken) { _terminal = terminal };
        // Not awaited: a read of the caller's stdin cannot be cancelled, and the process may end long before it does.
        _ = CopyInputAsync(io.Stdin, terminal?.Master ?? runc.StandardInput.BaseStream, closeAfter: terminal is null);
        streams._output = terminal is null
            ? Task.WhenAll(streams.CopyOutputAsync(runc.StandardOutput.BaseStream, io.Stdout), streams.CopyOutputAsync(runc.StandardError.BaseStream, io.Stderr))
            // With a terminal runc's pipes carry nothing (its streams are the slave); they are drained all the same.
            : Task.WhenAll(
                streams.CopyOutputAsync(terminal.Master, io.Stdout),
                streams.CopyOutputAsync(runc.StandardOutput.BaseStream, null),
                streams.CopyOutputAsync(runc.StandardError.BaseStream, null));
        if (terminal is not null && io.Resize is not null)
        {
            streams._resizes = ResizeAsync(io.Resize, terminal, runc.Id, streams._resizing.Token);
        }

        return streams;
    }

    /// <summary>Once runc has exited: lets the terminal's output end, waits for the output copies and stops resizing.</summary>
    public async Task CompleteAsync()
    {
        _terminal?.ReleaseSlave();
        await _resizing.CancelAsync().ConfigureAwait(false);
        await _output.ConfigureAwait(false);
        await _resizes.ConfigureAwait(false);
    }

    public void Dispose() => _resizing.Dispose();

    private async Task CopyOutputAsync(Stream from, Stream? to)
    {
        var buffer = new byte[16384];
        while (true)
        {
            int read;
            try
            {
                // Not cancellable: the streams end once the process is dead, which stopping ensures.
                read = await from.ReadAsync(buffer, CancellationToken.None).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // A terminal master whose slaves are all closed reads as EIO: the end of the output.
                return;
            }

            if (read == 0)
            {
                return;
            }

            if (to is null || OutputError is not null)
            {
                // Keep draining so a stopping process never blocks on a full pipe.
                continue;
            }

            try
            {
                await to.WriteAsync(buffer.AsMemory(0, read), _cancellationToken).ConfigureAwait(false);
                await to.FlushAsync(_cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_cancellationToken.IsCancellationRequested)
            {
                // The caller cancelled; the process is being killed.
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _outputError, e, null);
                await _stop.CancelAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task CopyInputAsync(Stream? from, Stream to, bool closeAfter)
    {
        try
        {
            if (from is not null)
            {
                var buffer = new byte[16384];
                int read;
                while ((read = await from.ReadAsync(buffer, CancellationToken.None).ConfigureAwait(false)) > 0)
                {
                    await to.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None).ConfigureAwait(false);
                    await to.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The process ended and its input went with it.
        }
        finally
        {
            if (closeAfter)
            {
                // A closed pipe reads as end-of-file.
                try
                {
                    await to.DisposeAsync().ConfigureAwait(false);
                }
                catch (IOException)
                {
                    // Its reader is gone already.
                }
            }
        }
    }

    private static async Task ResizeAsync(ChannelReader<TerminalSize> sizes, PseudoTerminal terminal, int runcPid, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var size in sizes.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                terminal.Resize(size);
                // runc leads no session on the slave, so the kernel tells it nothing; on SIGWINCH it resizes the container's terminal.
                Interop.Kill(runcPid, Interop.SigWinch);
            }
        }
        catch (OperationCanceledException)
        {
            // The process ended.
        }
    }
}
