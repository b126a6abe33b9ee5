using System.Runtime.InteropServices;
using System.Text;

using Farm.Oci.IO;

namespace Farm.Oci.Layers;

/// <summary>
/// Farm's one libc binding. This file: what the layer code needs and .NET does not expose: *at() calls relative to a
/// directory descriptor (so that path resolution never leaves a directory we opened without following symlinks),
/// statx for inode, device and owner, xattrs, mknod, lchown. <c>Interop.Mounts.cs</c> and <c>Interop.Terminal.cs</c>
/// hold the calls of the sandbox and the container runtime (Farm.Containers, which sees these internals).
/// </summary>
/// <remarks>Linux only, like OCI layers themselves. Callers outside Farm.Oci use the safe wrappers
/// (<see cref="Farm.Oci.IO.UnixFile"/>, Farm.Containers' mount and terminal types), not these declarations.</remarks>
internal static partial class Interop
{
    private const string LibC = "libc";

    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;

    public const int ENOENT = 2;
    public const int EEXIST = 17;
    public const int ENOTDIR = 20;
    public const int ELOOP = 40;
    public const int ENODATA = 61;
    public const int ERANGE = 34;
    public const int ENOTSUP = 95;

    public const uint SIfMt = 0xF000;
    public const uint SIfSock = 0xC000;
    public const uint SIfLnk = 0xA000;
    public const uint SIfReg = 0x8000;
    public const uint SIfBlk = 0x6000;
    public const uint SIfDir = 0x4000;
    public const uint SIfChr = 0x2000;
    public const uint SIfIfo = 0x1000;

    public const int ORdOnly = 0;
    public const int OWrOnly = 1;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int OCloExec = 0x80000;
    public const int OPath = 0x200000;

    // O_DIRECTORY and O_NOFOLLOW differ between x86-64 and arm64.
    public static readonly int ODirectory = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;
    public static readonly int ONoFollow = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    [LibraryImport(LibC, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatxRaw(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(LibC, EntryPoint = "llistxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint LListXattr(string path, byte* list, nint size);

    [LibraryImport(LibC, EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint LGetXattr(string path, string name, byte* value, nint size);

    [LibraryImport(LibC, EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int LSetXattr(string path, string name, byte* value, nint size, int flags);

    [LibraryImport(LibC, EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int OpenAt(int dirFd, string path, int flags, uint mode);

    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MkdirAt(int dirFd, string path, uint mode);

    [LibraryImport(LibC, EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UnlinkAt(int dirFd, string path, int flags);

    [LibraryImport(LibC, EntryPoint = "symlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SymlinkAt(string target, int dirFd, string path);

    [LibraryImport(LibC, EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int LinkAt(int oldDirFd, string oldPath, int newDirFd, string newPath, int flags);

    [LibraryImport(LibC, EntryPoint = "readlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint ReadLinkAtRaw(int dirFd, string path, byte* buffer, nint size);

    /// <summary>The target of the symlink <paramref name="path"/> relative to <paramref name="dirFd"/>; null (errno set) when it cannot be read.</summary>
    public static string? ReadLinkAt(int dirFd, string path)
    {
        // PATH_MAX bounds a link's target on Linux.
        var buffer = new byte[4096];
        nint n;
        unsafe
        {
            fixed (byte* p = buffer)
            {
                n = ReadLinkAtRaw(dirFd, path, p, buffer.Length);
            }
        }

        return n < 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)n);
    }

    [LibraryImport(LibC, EntryPoint = "mknodat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MknodAt(int dirFd, string path, uint mode, ulong dev);

    [LibraryImport(LibC, EntryPoint = "fchownat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FchownAt(int dirFd, string path, uint uid, uint gid, int flags);

    [LibraryImport(LibC, EntryPoint = "fchmodat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FchmodAt(int dirFd, string path, uint mode, int flags);

    [LibraryImport(LibC, EntryPoint = "fchown", SetLastError = true)]
    public static partial int Fchown(int fd, uint uid, uint gid);

    [LibraryImport(LibC, EntryPoint = "fchmod", SetLastError = true)]
    public static partial int Fchmod(int fd, uint mode);

    [LibraryImport(LibC, EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int UtimensAtRaw(int dirFd, string path, long* times, int flags);

    public static int UtimensAt(int dirFd, string path, long seconds, int flags) => UtimensAt(dirFd, path, seconds, 0, flags);

    public static int UtimensAt(int dirFd, string path, long seconds, long nanoseconds, int flags)
    {
        unsafe
        {
            // atime and mtime alike: atime is not part of a layer, so the same value keeps it deterministic.
            long* times = stackalloc long[4] { seconds, nanoseconds, seconds, nanoseconds };
            return UtimensAtRaw(dirFd, path, times, flags);
        }
    }

    public static ulong MakeDev(long major, long minor)
    {
        var ma = (ulong)major;
        var mi = (ulong)minor;
        return ((ma & 0xfffff000UL) << 32) | ((ma & 0xfffUL) << 8) | ((mi & 0xffffff00UL) << 12) | (mi & 0xffUL);
    }

    /// <summary>lstat-style metadata of <paramref name="path"/> relative to <paramref name="dirFd"/>; never follows a final symlink.</summary>
    public static int Lstat(int dirFd, string path, out FileStat stat)
    {
        unsafe
        {
            // struct statx is 256 bytes with a fixed layout on every architecture, unlike struct stat.
            byte* b = stackalloc byte[256];
            const uint mask = 0x7ff; // STATX_BASIC_STATS
            var rc = StatxRaw(dirFd, path, AtSymlinkNoFollow, mask, b);
            if (rc != 0)
            {
                stat = default;
                return Marshal.GetLastPInvokeError();
            }

            stat = new FileStat(
                Mode: *(ushort*)(b + 28),
                Uid: *(uint*)(b + 20),
                Gid: *(uint*)(b + 24),
                Nlink: *(uint*)(b + 16),
                Inode: *(ulong*)(b + 32),
                Size: *(long*)(b + 40),
                MtimeSeconds: *(long*)(b + 112),
                MtimeNanoseconds: *(uint*)(b + 120),
                RdevMajor: *(uint*)(b + 128),
                RdevMinor: *(uint*)(b + 132),
                DevMajor: *(uint*)(b + 136),
                DevMinor: *(uint*)(b + 140))
            {
                CtimeSeconds = *(long*)(b + 96),
                CtimeNanoseconds = *(uint*)(b + 104),
            };
            return 0;
        }
    }

    /// <summary>Extended attributes of a path without following a final symlink, names in ordinal order.</summary>
    public static SortedDictionary<string, byte[]> ListXattrs(string path)
    {
        var result = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        unsafe
        {
            var size = LListXattr(path, null, 0);
            if (size < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == ENOTSUP)
                {
                    return result;
                }

                throw new LayerIoException("llistxattr", path, errno);
            }

            if (size == 0)
            {
                return result;
            }

            var list = new byte[size + 256];
            fixed (byte* l = list)
            {
                size = LListXattr(path, l, list.Length);
            }

            if (size < 0)
            {
                throw new LayerIoException("llistxattr", path, Marshal.GetLastPInvokeError());
            }

            var start = 0;
            for (var i = 0; i < size; i++)
            {
                if (list[i] != 0)
                {
                    continue;
                }

                var name = Encoding.UTF8.GetString(list, start, i - start);
                start = i + 1;
                var value = GetXattr(path, name);
                if (value is not null)
                {
                    result[name] = value;
                }
            }
        }

        return result;
    }

    private static byte[]? GetXattr(string path, string name)
    {
        unsafe
        {
            var size = LGetXattr(path, name, null, 0);
            if (size < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                return errno == ENODATA ? null : throw new LayerIoException($"lgetxattr {name}", path, errno);
            }

            var value = new byte[size];
            fixed (byte* v = value)
            {
                size = LGetXattr(path, name, v, value.Length);
            }

            return size < 0 ? throw new LayerIoException($"lgetxattr {name}", path, Marshal.GetLastPInvokeError()) : value[..(int)size];
        }
    }

    public static int SetXattr(string path, string name, byte[] value)
    {
        unsafe
        {
            fixed (byte* v = value)
            {
                return LSetXattr(path, name, v, value.Length, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();
            }
        }
    }
}
