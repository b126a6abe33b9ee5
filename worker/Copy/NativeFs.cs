using System.Runtime.InteropServices;
using System.Text;

namespace Farm.Worker.Copy;

/// <summary>What lstat says about one path.</summary>
internal readonly record struct FsStat(uint Mode, uint Uid, uint Gid, long Size, ulong Inode, ulong Device, uint Links, long MtimeSeconds, uint MtimeNanoseconds, uint RdevMajor, uint RdevMinor)
{
    public const uint TypeMask = 0xF000;
    public const uint Directory = 0x4000;
    public const uint Regular = 0x8000;
    public const uint Symlink = 0xA000;
    public const uint Fifo = 0x1000;
    public const uint CharDevice = 0x2000;
    public const uint BlockDevice = 0x6000;
    public const uint Socket = 0xC000;

    public uint Type => Mode & TypeMask;

    public uint Permissions => Mode & 0xFFF;

    public bool IsDirectory => Type == Directory;

    public bool IsRegular => Type == Regular;

    public bool IsSymlink => Type == Symlink;
}

/// <summary>
/// The few POSIX calls the BCL does not offer: lstat with owner and inode, lchown, link, mknod, and
/// utimensat on a symlink itself. Linux only, which is all a worker runs on.
/// </summary>
/// <remarks>statx is used rather than lstat because its struct layout is the same on every architecture.</remarks>
internal static class NativeFs
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7FF;
    private const int Enoent = 2;
    private const int Enotdir = 20;

    public static FsStat? TryLstat(string path)
    {
        var buffer = new byte[256];
        if (statx(AtFdCwd, Bytes(path), AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Enoent or Enotdir)
            {
                return null;
            }

            throw Error("lstat", path, errno);
        }

        var span = buffer.AsSpan();
        return new FsStat(
            Mode: BitConverter.ToUInt16(span[28..]),
            Uid: BitConverter.ToUInt32(span[20..]),
            Gid: BitConverter.ToUInt32(span[24..]),
            Size: BitConverter.ToInt64(span[40..]),
            Inode: BitConverter.ToUInt64(span[32..]),
            Device: ((ulong)BitConverter.ToUInt32(span[136..]) << 32) | BitConverter.ToUInt32(span[140..]),
            Links: BitConverter.ToUInt32(span[16..]),
            MtimeSeconds: BitConverter.ToInt64(span[112..]),
            MtimeNanoseconds: BitConverter.ToUInt32(span[120..]),
            RdevMajor: BitConverter.ToUInt32(span[128..]),
            RdevMinor: BitConverter.ToUInt32(span[132..]));
    }

    public static FsStat Lstat(string path) =>
        TryLstat(path) ?? throw new FileNotFoundException($"{path} does not exist", path);

    public static void Lchown(string path, uint uid, uint gid)
    {
        if (lchown(Bytes(path), uid, gid) != 0)
        {
            throw Error("lchown", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>chmod, which follows symlinks; never call it on one.</summary>
    public static void Chmod(string path, uint mode)
    {
        if (chmod(Bytes(path), mode & 0xFFF) != 0)
        {
            throw Error("chmod", path, Marshal.GetLastPInvokeError());
        }
    }

    public static void Link(string existing, string path)
    {
        if (link(Bytes(existing), Bytes(path)) != 0)
        {
            throw Error("link", path, Marshal.GetLastPInvokeError());
        }
    }

    public static void Mknod(string path, uint mode, uint major, uint minor)
    {
        // glibc's makedev encoding.
        var dev = ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0xFFF) << 8)
            | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF);
        if (mknod(Bytes(path), mode, dev) != 0)
        {
            throw Error("mknod", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Sets atime and mtime of the path itself, never of a symlink's target.</summary>
    public static void SetTimes(string path, long seconds, long nanoseconds)
    {
        var times = new[] { seconds, nanoseconds, seconds, nanoseconds };
        if (utimensat(AtFdCwd, Bytes(path), times, AtSymlinkNoFollow) != 0)
        {
            throw Error("utimensat", path, Marshal.GetLastPInvokeError());
        }
    }

    public static void SetTimes(string path, DateTimeOffset time)
    {
        var ticks = time.UtcDateTime.Ticks - DateTime.UnixEpoch.Ticks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        SetTimes(path, seconds, rest * 100);
    }

    private static byte[] Bytes(string path)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    private static IOException Error(string call, string path, int errno) =>
        new($"{call} {path} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);

#pragma warning disable SYSLIB1054 // LibraryImport would need AllowUnsafeBlocks in the shared project file.
    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, byte[] path, int flags, uint mask, byte[] buffer);

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown(byte[] path, uint uid, uint gid);

    [DllImport("libc", SetLastError = true)]
    private static extern int chmod(byte[] path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int link(byte[] existing, byte[] path);

    [DllImport("libc", SetLastError = true)]
    private static extern int mknod(byte[] path, uint mode, ulong dev);

    [DllImport("libc", SetLastError = true)]
    private static extern int utimensat(int dirfd, byte[] path, long[] times, int flags);
#pragma warning restore SYSLIB1054
}
