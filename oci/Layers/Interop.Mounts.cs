using System.Runtime.InteropServices;

namespace Farm.Oci.Layers;

/// <summary>The mount, rename and resource-limit calls the sandbox and the container runtime need (Farm.Containers).</summary>
internal static partial class Interop
{
    public const ulong MsNoDev = 4;
    public const int MntDetach = 2;
    public const int EBUSY = 16;
    public const int EINVAL = 22;
    public const int RlimitNoFile = 7;

    [LibraryImport(LibC, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string data);

    [LibraryImport(LibC, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport(LibC, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Rename(string oldPath, string newPath);

    [LibraryImport(LibC, EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimitRaw(int resource, out RlimitBuffer limit);

    /// <summary>Whether an extended attribute exists on the path itself (symlinks not followed).</summary>
    public static bool HasXattr(string path, string name)
    {
        unsafe
        {
            return LGetXattr(path, name, null, 0) >= 0;
        }
    }

    /// <summary>getrlimit(2); throws <see cref="IOException"/> when it fails.</summary>
    public static (ulong Soft, ulong Hard) GetRlimit(int resource)
    {
        if (GetRlimitRaw(resource, out var limit) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"getrlimit({resource}) failed: {ErrorText(errno)} (errno {errno})", errno);
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
