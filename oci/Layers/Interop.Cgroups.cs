using System.Runtime.InteropServices;

namespace Farm.Oci.Layers;

/// <summary>The eventfd a step's cgroup reports out-of-memory events through (cgroup v1 <c>cgroup.event_control</c>; Farm.Containers).</summary>
internal static partial class Interop
{
    private const int EfdCloexec = 0x80000;
    private const int EfdNonblock = 0x800;

    [LibraryImport(LibC, EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdRaw(uint initialValue, int flags);

    [LibraryImport(LibC, EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadCounter(int fd, out ulong value, nint count);

    /// <summary>A non-blocking, close-on-exec eventfd; -1 on failure.</summary>
    public static int EventFd() => EventFdRaw(0, EfdCloexec | EfdNonblock);

    /// <summary>Reads and resets an eventfd's counter; 0 when nothing was signalled since the last read.</summary>
    public static ulong ReadEventFd(int fd) => ReadCounter(fd, out var value, sizeof(ulong)) == sizeof(ulong) ? value : 0;
}
