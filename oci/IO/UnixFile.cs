using Farm.Oci.Layers;

namespace Farm.Oci.IO;

/// <summary>
/// The POSIX file calls .NET does not offer (lstat with owner, inode and type; lchown; link; mknod; utimensat on a
/// symlink itself), for code outside the layer reader and writer. One binding for the whole farm; Linux only.
/// </summary>
public static class UnixFile
{
    /// <summary>lstat of <paramref name="path"/>; null when it does not exist.</summary>
    public static FileStat? Lstat(string path)
    {
        var errno = Interop.Lstat(Interop.AtFdCwd, path, out var stat);
        return errno switch
        {
            0 => stat,
            Interop.ENOENT or Interop.ENOTDIR => null,
            _ => throw Error("lstat", path, errno),
        };
    }

    /// <summary>lstat of a path that must exist.</summary>
    public static FileStat LstatExisting(string path) =>
        Lstat(path) ?? throw new FileNotFoundException($"{path} does not exist", path);

    /// <summary>Changes the owner of the path itself, never of a symlink's target.</summary>
    public static void Lchown(string path, uint uid, uint gid) =>
        Check(Interop.FchownAt(Interop.AtFdCwd, path, uid, gid, Interop.AtSymlinkNoFollow), "lchown", path);

    /// <summary>chmod without the umask; it follows symlinks, so never call it on one.</summary>
    public static void Chmod(string path, uint mode) =>
        Check(Interop.FchmodAt(Interop.AtFdCwd, path, mode & 0xFFF, 0), "chmod", path);

    public static void Link(string existing, string path) =>
        Check(Interop.LinkAt(Interop.AtFdCwd, existing, Interop.AtFdCwd, path, 0), "link", path);

    public static void Mknod(string path, uint mode, uint major, uint minor) =>
        Check(Interop.MknodAt(Interop.AtFdCwd, path, mode, Interop.MakeDev(major, minor)), "mknod", path);

    /// <summary>Sets atime and mtime of the path itself, never of a symlink's target.</summary>
    public static void SetTimes(string path, long seconds, long nanoseconds) =>
        Check(Interop.UtimensAt(Interop.AtFdCwd, path, seconds, nanoseconds, Interop.AtSymlinkNoFollow), "utimensat", path);

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

    private static void Check(int result, string call, string path)
    {
        if (result != 0)
        {
            throw Error(call, path, System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
    }

    private static IOException Error(string call, string path, int errno) =>
        new($"{call} {path} failed: {Interop.ErrorText(errno)} (errno {errno})", errno);
}
