using System.Runtime.InteropServices;

namespace Farm.Dockerfile.Context;

/// <summary>
/// The type of a directory entry without following symlinks. .NET's FileInfo cannot tell a fifo or socket from a
/// regular file, and opening a fifo to read it blocks forever, so the context walk asks the kernel.
/// </summary>
internal static partial class FileKind
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const ushort TypeMask = 0xF000;
    private const ushort Regular = 0x8000;

    public static bool IsRegularFile(string path) =>
        Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, out var buffer) == 0 && (buffer.Mode & TypeMask) == Regular;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, out StatxBuffer buffer);

    // struct statx (linux/stat.h) has the same layout on every architecture; only stx_mode is read.
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(28)]
        public ushort Mode;
    }
}
