using Farm.Oci.Layers;
using Microsoft.Win32.SafeHandles;

namespace Farm.Containers.Runc;

/// <summary>
/// A pseudo-terminal pair on the host, as BuildKit's runc executor makes one: runc gets the slave as its standard
/// streams (and, seeing a terminal, gives the container a terminal of its own behind it); the executor reads and writes
/// the master.
/// </summary>
/// <remarks>
/// The executor keeps a slave descriptor of its own open while runc runs: a master whose slave was never opened, or
/// whose last slave closed, reads as EIO, which would end the output copy before runc has even started.
/// </remarks>
internal sealed class PseudoTerminal : IDisposable
{
    private readonly SafeFileHandle _master;
    private SafeFileHandle? _slave;

    private PseudoTerminal(SafeFileHandle master, string slavePath, SafeFileHandle slave)
    {
        _master = master;
        _slave = slave;
        SlavePath = slavePath;
        // Unbuffered: every byte the container writes is passed on at once, as a terminal shows it.
        Master = new FileStream(master, FileAccess.ReadWrite, bufferSize: 0);
    }

    /// <summary>The slave's path (<c>/dev/pts/N</c>), for runc's standard streams.</summary>
    public string SlavePath { get; }

    /// <summary>The master: what the process writes is read here, what is written here is its input.</summary>
    public Stream Master { get; }

    /// <summary>Opens a pair, sized <paramref name="size"/> when given.</summary>
    /// <exception cref="IOException">The kernel has no pseudo-terminal to give.</exception>
    public static PseudoTerminal Open(TerminalSize? size)
    {
        var (master, slavePath) = Interop.OpenPty();
        var masterHandle = new SafeFileHandle(master, ownsHandle: true);
        try
        {
            var slave = Interop.OpenAt(Interop.AtFdCwd, slavePath, Interop.ORdWr | Interop.ONoCtty | Interop.OCloExec, 0);
            if (slave < 0)
            {
                var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                throw new IOException($"opening {slavePath} failed: {Interop.ErrorText(errno)} (errno {errno})", errno);
            }

            var slaveHandle = new SafeFileHandle(slave, ownsHandle: true);
            // Raw from the start: runc sets it raw too, but only after it began copying, and output of a quick process
            // would meanwhile get a second \r from this side's line discipline.
            if (Interop.GetTerminalAttributes(slave) is { } attributes)
            {
                Interop.SetTerminalAttributes(slave, Interop.MakeRaw(attributes));
            }

            var terminal = new PseudoTerminal(masterHandle, slavePath, slaveHandle);
            if (size is { } s)
            {
                terminal.Resize(s);
            }

            return terminal;
        }
        catch
        {
            masterHandle.Dispose();
            throw;
        }
    }

    /// <summary>Sets the window size (runc reads it from its side when it gets SIGWINCH).</summary>
    public void Resize(TerminalSize size) => Interop.SetWindowSize((int)_master.DangerousGetHandle(), size.Rows, size.Columns);

    /// <summary>Closes the executor's own slave descriptor: once runc's are closed too, reading the master ends.</summary>
    public void ReleaseSlave()
    {
        _slave?.Dispose();
        _slave = null;
    }

    public void Dispose()
    {
        ReleaseSlave();
        Master.Dispose();
        _master.Dispose();
    }
}
