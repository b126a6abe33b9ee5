using System.Runtime.InteropServices;
using Farm.Oci.Layers;

namespace Farm.Containers.Snapshots;

/// <summary>The overlay mounts of snapshots and containers, and the mount table they are looked up in.</summary>
public static class MountPoints
{
    /// <summary>Mounts overlayfs at <paramref name="target"/> with <paramref name="options"/> (lowerdir=...,upperdir=...,workdir=...), nodev.</summary>
    /// <exception cref="IOException">mount(2) failed; <see cref="Exception.HResult"/> is the errno.</exception>
    public static void MountOverlay(string target, string options)
    {
        if (Interop.Mount("overlay", target, "overlay", Interop.MsNoDev, options) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{Interop.ErrorText(errno)} (errno {errno})", errno);
        }
    }

    /// <summary>
    /// Mounts a private tmpfs at <paramref name="target"/> (nosuid, nodev, noexec) with <paramref name="options"/>
    /// (e.g. <c>mode=0700,size=1m</c>): memory only, so what is written there never reaches a disk.
    /// </summary>
    /// <exception cref="IOException">mount(2) failed; <see cref="Exception.HResult"/> is the errno.</exception>
    public static void MountTmpfs(string target, string options)
    {
        const ulong noSuidNoDevNoExec = 2 | 4 | 8;
        if (Interop.Mount("tmpfs", target, "tmpfs", noSuidNoDevNoExec, options) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{Interop.ErrorText(errno)} (errno {errno})", errno);
        }
    }

    /// <summary>
    /// Unmounts <paramref name="target"/>; when a process still holds a file in it (EBUSY), detaches it instead, so the
    /// mount goes once that process exits.
    /// </summary>
    /// <returns>False when nothing is mounted there.</returns>
    /// <exception cref="IOException">umount2(2) failed otherwise.</exception>
    public static bool Unmount(string target)
    {
        if (Interop.Umount2(target, 0) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == Interop.EBUSY && Interop.Umount2(target, Interop.MntDetach) == 0)
        {
            return true;
        }

        return errno == Interop.EINVAL ? false : throw new IOException($"{Interop.ErrorText(errno)} (errno {errno})", errno);
    }

    /// <summary>Detaches the mount at <paramref name="target"/> (MNT_DETACH), ignoring failure: for clean-up after a crash.</summary>
    public static void Detach(string target) => Interop.Umount2(target, Interop.MntDetach);

    /// <summary>Whether <paramref name="path"/> is a mount point in this mount namespace.</summary>
    public static bool IsMountPoint(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        return MountTargets().Contains(full);
    }

    /// <summary>The mount points strictly below <paramref name="path"/>, deepest first (the order to unmount them in).</summary>
    public static IReadOnlyList<string> Under(string path)
    {
        var prefix = Path.GetFullPath(path).TrimEnd('/') + "/";
        return [.. MountTargets().Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).OrderByDescending(m => m.Length)];
    }

    // Field 5 of /proc/self/mountinfo is the mount point.
    private static IEnumerable<string> MountTargets() =>
        File.ReadLines("/proc/self/mountinfo").Select(line => line.Split(' ')).Where(f => f.Length > 4).Select(f => f[4]);
}
