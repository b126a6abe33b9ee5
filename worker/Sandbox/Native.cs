using System.Runtime.InteropServices;

namespace Farm.Worker.Sandbox;

/// <summary>The few libc calls the sandbox needs that the BCL does not offer (mounts, owners, device numbers, rlimits).</summary>
internal static partial class Native
{
    private const string Libc = "libc";

    internal const ulong MsNoDev = 4;
    internal const int MntDetach = 2;
    internal const int AtFdCwd = -100;
    internal const int AtSymlinkNoFollow = 0x100;
    internal const uint StatxBasicStats = 0x7ff;
    internal const int ENoEnt = 2;
    internal const int EBusy = 16;
    internal const int EInval = 22;
    internal const int ENoData = 61;
    internal const int RlimitNoFile = 7;

    [LibraryImport(Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string fileSystemType, ulong flags, string data);

    [LibraryImport(Libc, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);

    [LibraryImport(Libc, EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Lchown(string path, uint owner, uint group);

    [LibraryImport(Libc, EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Chmod(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameCall(string oldPath, string newPath);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxCall(int dirFd, string path, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport(Libc, EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint LGetXattr(string path, string name, byte* value, nuint size);

    [LibraryImport(Libc, EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimit(int resource, out RlimitBuffer limit);

    /// <summary>lstat through statx, whose layout is the same on every architecture (struct stat is not).</summary>
    internal static FileStatus? Lstat(string path)
    {
        if (StatxCall(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out var b) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENoEnt || errno == 20 /* ENOTDIR */)
            {
                return null;
            }

            throw new IOException($"statx {path} failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        return new FileStatus(b.Mode, b.Uid, b.Gid, (long)b.Size, b.RdevMajor, b.RdevMinor);
    }

    /// <summary>chmod that ignores the umask and throws on failure.</summary>
    internal static void SetMode(string path, uint mode)
    {
        if (Chmod(path, mode) != 0)
        {
            throw new IOException($"chmod {path} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>rename(2): atomic replace, and it moves a symlink to a directory (File.Move refuses that).</summary>
    internal static void Rename(string oldPath, string newPath)
    {
        if (RenameCall(oldPath, newPath) != 0)
        {
            throw new IOException($"rename {oldPath} to {newPath} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>Whether an extended attribute exists on the path itself (symlinks not followed).</summary>
    internal static unsafe bool HasXattr(string path, string name)
    {
        var n = LGetXattr(path, name, null, 0);
        return n >= 0;
    }

    internal static (ulong Soft, ulong Hard) GetRlimit(int resource)
    {
        if (GetRlimit(resource, out var limit) != 0)
        {
            throw new IOException($"getrlimit({resource}) failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }

        return (limit.Current, limit.Max);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RlimitBuffer
    {
        public ulong Current;
        public ulong Max;
    }

    // struct statx from linux/stat.h: 256 bytes, fixed layout on all architectures.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
    }
}

/// <summary>The parts of lstat(2) the sandbox looks at.</summary>
internal readonly record struct FileStatus(ushort Mode, uint Uid, uint Gid, long Size, uint RdevMajor, uint RdevMinor)
{
    private const int TypeMask = 0xF000;

    public bool IsDirectory => (Mode & TypeMask) == 0x4000;

    public bool IsRegularFile => (Mode & TypeMask) == 0x8000;

    public bool IsSymlink => (Mode & TypeMask) == 0xA000;

    public bool IsCharDevice => (Mode & TypeMask) == 0x2000;

    /// <summary>Permission bits including setuid, setgid and sticky.</summary>
    public int Permissions => Mode & 0xFFF;
}
