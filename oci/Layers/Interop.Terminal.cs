using System.Runtime.InteropServices;
using System.Text;

namespace Farm.Oci.Layers;

/// <summary>
/// Pseudo-terminals and terminal modes for containers with a terminal (Farm.Containers): a pty pair, its window
/// size, raw mode on the caller's terminal, and signals to a process id.
/// </summary>
internal static partial class Interop
{
    public const int ORdWr = 2;
    public const int ONoCtty = 0x100;
    public const int SigWinch = 28;

    // The same on x86-64 and arm64 (asm-generic ioctls).
    private const nuint TiocGWinSz = 0x5413;
    private const nuint TiocSWinSz = 0x5414;
    private const int TcsaNow = 0;

    // struct termios is 60 bytes in glibc on both architectures; the buffer is opaque here and only round-trips.
    private const int TermiosSize = 64;

    [LibraryImport(LibC, EntryPoint = "posix_openpt", SetLastError = true)]
    private static partial int PosixOpenpt(int flags);

    [LibraryImport(LibC, EntryPoint = "grantpt", SetLastError = true)]
    private static partial int Grantpt(int fd);

    [LibraryImport(LibC, EntryPoint = "unlockpt", SetLastError = true)]
    private static partial int Unlockpt(int fd);

    [LibraryImport(LibC, EntryPoint = "ptsname_r", SetLastError = true)]
    private static unsafe partial int PtsnameR(int fd, byte* buffer, nuint length);

    [LibraryImport(LibC, EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport(LibC, EntryPoint = "tcgetattr", SetLastError = true)]
    private static unsafe partial int TcGetAttr(int fd, byte* termios);

    [LibraryImport(LibC, EntryPoint = "tcsetattr", SetLastError = true)]
    private static unsafe partial int TcSetAttr(int fd, int action, byte* termios);

    [LibraryImport(LibC, EntryPoint = "cfmakeraw")]
    private static unsafe partial void CfMakeRaw(byte* termios);

    [LibraryImport(LibC, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>A new pseudo-terminal: the master's descriptor (close-on-exec) and the slave's path.</summary>
    public static (int Master, string SlavePath) OpenPty()
    {
        var master = PosixOpenpt(ORdWr | ONoCtty | OCloExec);
        if (master < 0)
        {
            throw TerminalError("posix_openpt", Marshal.GetLastPInvokeError());
        }

        try
        {
            if (Grantpt(master) != 0)
            {
                throw TerminalError("grantpt", Marshal.GetLastPInvokeError());
            }

            if (Unlockpt(master) != 0)
            {
                throw TerminalError("unlockpt", Marshal.GetLastPInvokeError());
            }

            unsafe
            {
                var name = stackalloc byte[128];
                var rc = PtsnameR(master, name, 128);
                if (rc != 0)
                {
                    throw TerminalError("ptsname_r", rc);
                }

                return (master, Encoding.UTF8.GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name)));
            }
        }
        catch
        {
            Close(master);
            throw;
        }
    }

    /// <summary>The window size of the terminal <paramref name="fd"/>; null when it is no terminal.</summary>
    public static (ushort Rows, ushort Columns)? GetWindowSize(int fd)
    {
        unsafe
        {
            var size = stackalloc ushort[4];
            return Ioctl(fd, TiocGWinSz, size) == 0 ? (size[0], size[1]) : null;
        }
    }

    /// <summary>Sets the window size of the terminal <paramref name="fd"/>; the foreground process group gets SIGWINCH.</summary>
    public static void SetWindowSize(int fd, ushort rows, ushort columns)
    {
        unsafe
        {
            var size = stackalloc ushort[4] { rows, columns, 0, 0 };
            if (Ioctl(fd, TiocSWinSz, size) != 0)
            {
                throw TerminalError("ioctl(TIOCSWINSZ)", Marshal.GetLastPInvokeError());
            }
        }
    }

    /// <summary>The terminal attributes of <paramref name="fd"/>, opaque; null when it is no terminal.</summary>
    public static byte[]? GetTerminalAttributes(int fd)
    {
        var termios = new byte[TermiosSize];
        unsafe
        {
            fixed (byte* t = termios)
            {
                return TcGetAttr(fd, t) == 0 ? termios : null;
            }
        }
    }

    /// <summary>Applies attributes read by <see cref="GetTerminalAttributes"/>, now.</summary>
    public static void SetTerminalAttributes(int fd, byte[] termios)
    {
        unsafe
        {
            fixed (byte* t = termios)
            {
                if (TcSetAttr(fd, TcsaNow, t) != 0)
                {
                    throw TerminalError("tcsetattr", Marshal.GetLastPInvokeError());
                }
            }
        }
    }

    /// <summary>The attributes of raw mode (cfmakeraw(3)) derived from <paramref name="termios"/>.</summary>
    public static byte[] MakeRaw(byte[] termios)
    {
        var raw = (byte[])termios.Clone();
        unsafe
        {
            fixed (byte* t = raw)
            {
                CfMakeRaw(t);
            }
        }

        return raw;
    }

    private static IOException TerminalError(string call, int errno) =>
        new($"{call} failed: {ErrorText(errno)} (errno {errno})", errno);
}
