using System.Runtime.InteropServices;

namespace Farm.Worker.Sandbox;

/// <summary>The few libc calls the sandbox needs that the BCL does not offer (mounts, xattrs, rename, rlimits); file metadata is Farm.Oci.IO.UnixFile's.</summary>
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

    [LibraryImport(Libc, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameCall(string oldPath, string newPath);

    [LibraryImport(Libc, EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint LGetXattr(string path, string name, byte* value, nuint size);

    [LibraryImport(Libc, EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimit(int resource, out RlimitBuffer limit);

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
}
