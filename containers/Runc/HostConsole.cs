using System.Runtime.InteropServices;
using System.Threading.Channels;
using Farm.Oci.Layers;
using Microsoft.Win32.SafeHandles;
using Farm.Oci.IO;

namespace Farm.Containers.Runc;

/// <summary>
/// This process's own standard streams as a container process's (<c>farm run</c> and <c>farm exec</c> in the
/// foreground): with a terminal, the caller's terminal is put in raw mode (keys, Ctrl-C included, go to the container,
/// whose terminal interprets them) and its window size follows the caller's; disposing restores the terminal.
/// </summary>
public sealed class HostConsole : IDisposable
{
    private const int StdinFd = 0;

    private readonly byte[]? _savedAttributes;
    private readonly PosixSignalRegistration? _winch;
    private readonly Channel<TerminalSize>? _sizes;

    private HostConsole(bool stdin, bool terminal)
    {
        // The descriptors directly: Console's stdin stream edits lines itself when it is a terminal, and Console's
        // output streams set up the terminal (application keypad mode) on first write.
        var input = stdin ? new FileStream(new SafeFileHandle(StdinFd, ownsHandle: false), FileAccess.Read, bufferSize: 0) : null;
        Io = new ProcessIo { Stdin = input, Stdout = new OutputDescriptor(1), Stderr = new OutputDescriptor(2) };
        if (!terminal)
        {
            return;
        }

        _savedAttributes = Interop.GetTerminalAttributes(StdinFd)
            ?? throw new InvalidOperationException("A container terminal needs this process's standard input to be a terminal.");
        _sizes = Channel.CreateUnbounded<TerminalSize>(new UnboundedChannelOptions { SingleReader = true });
        _winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, context =>
        {
            context.Cancel = true;
            if (CurrentSize() is { } size)
            {
                _sizes.Writer.TryWrite(size);
            }
        });
        Io = Io with { Terminal = true, InitialSize = CurrentSize(), Resize = _sizes.Reader };
        Interop.SetTerminalAttributes(StdinFd, Interop.MakeRaw(_savedAttributes));
    }

    /// <summary>The streams (and terminal) to give <see cref="RuncExecutor"/>.</summary>
    public ProcessIo Io { get; }

    /// <summary>
    /// Attaches to this process's streams: stdin only with <paramref name="stdin"/> (else the process reads end-of-file),
    /// a terminal with <paramref name="terminal"/> (standard input must be one).
    /// </summary>
    public static HostConsole Attach(bool stdin, bool terminal) => new(stdin, terminal);

    /// <summary>Whether this process's standard input is a terminal a container process could use.</summary>
    public static bool HasTerminal => Interop.GetTerminalAttributes(StdinFd) is not null;

    public void Dispose()
    {
        _winch?.Dispose();
        _sizes?.Writer.TryComplete();
        if (_savedAttributes is not null)
        {
            Interop.SetTerminalAttributes(StdinFd, _savedAttributes);
        }
    }

    /// <summary>
    /// Standard output or error of this process, unbuffered. Once its reader is gone (EPIPE) further output is dropped,
    /// as Console's streams do, rather than stopping the container.
    /// </summary>
    private sealed class OutputDescriptor(int fd) : WriteOnlyStream
    {
        private readonly FileStream _file = new(new SafeFileHandle(fd, ownsHandle: false), FileAccess.Write, bufferSize: 0);
        private bool _closed;

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (_closed)
            {
                return;
            }

            try
            {
                _file.Write(buffer, offset, count);
            }
            catch (IOException)
            {
                _closed = true;
            }
        }

        public override void Flush()
        {
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _file.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private static TerminalSize? CurrentSize() =>
        (Interop.GetWindowSize(StdinFd) ?? Interop.GetWindowSize(1)) is { } s ? new TerminalSize(s.Rows, s.Columns) : null;
}
