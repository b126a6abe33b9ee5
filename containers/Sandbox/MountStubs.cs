using Farm.Oci.IO;
using Farm.Oci.Layers;

namespace Farm.Containers.Sandbox;

/// <summary>
/// Remembers which mount points of a run existed before runc started, so that the empty files and directories
/// runc creates to mount on (/proc, /dev, /sys, /etc/resolv.conf, /etc/hosts, ...) and the directories overlayfs
/// copied up only to hold them can be taken out of the upperdir afterwards. Without this every layer would carry
/// those stubs (BuildKit and Docker clean up the same way).
/// </summary>
public sealed class MountStubs
{
    private readonly Dictionary<string, PathState> _before;

    private MountStubs(Dictionary<string, PathState> before) => _before = before;

    /// <summary>Nothing to clean (e.g. the run never started).</summary>
    public static MountStubs None { get; } = new([]);

    /// <summary>
    /// Records, before the run, the state of every mount destination and its ancestors in the merged rootfs and
    /// (when known) the upperdir.
    /// </summary>
    /// <param name="rootfs">The merged directory runc will use as root.</param>
    /// <param name="upperDir">The overlay upperdir under it, or <see langword="null"/> when the rootfs is no overlay.</param>
    /// <param name="destinations">Absolute container paths runc mounts on.</param>
    public static MountStubs Capture(string rootfs, string? upperDir, IEnumerable<string> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        if (upperDir is null)
        {
            return None;
        }

        var before = new Dictionary<string, PathState>(StringComparer.Ordinal);
        foreach (var destination in destinations)
        {
            var parts = RootfsPath.Split(destination).ToArray();
            for (var i = 1; i <= parts.Length; i++)
            {
                var relative = string.Join('/', parts.Take(i));
                if (before.ContainsKey(relative))
                {
                    continue;
                }

                var merged = UnixFile.Lstat(Path.Combine(rootfs, relative));
                before[relative] = new PathState(merged, UnixFile.Lstat(Path.Combine(upperDir, relative)) is not null, IsLeaf: i == parts.Length);
                if (merged is { IsDirectory: false })
                {
                    // A file or symlink: runc resolves a symlink inside the rootfs and mounts elsewhere; what lies
                    // below is not ours to judge.
                    break;
                }
            }
        }

        return new MountStubs(before);
    }

    /// <summary>
    /// Removes from <paramref name="upperDir"/> the stubs this run left: entries absent before the run that are
    /// now empty directories (or empty files, at a mount destination), and directories that were only copied up
    /// to hold a stub (same mode and owner as before, empty, not opaque). Call it after the overlay is unmounted:
    /// overlayfs does not allow changes to its layers while mounted.
    /// </summary>
    /// <returns>The container paths removed, deepest first.</returns>
    public IReadOnlyList<string> RemoveFrom(string upperDir)
    {
        var removed = new List<string>();
        foreach (var (relative, state) in _before.OrderByDescending(p => p.Key.Count(c => c == '/')).ThenBy(p => p.Key, StringComparer.Ordinal))
        {
            if (state.InUpperBefore)
            {
                continue;
            }

            var path = Path.Combine(upperDir, relative);
            var now = UnixFile.Lstat(path);
            if (now is not { } current)
            {
                continue;
            }

            var isEmptyDir = current.IsDirectory && !Directory.EnumerateFileSystemEntries(path).Any();
            bool remove;
            if (state.Merged is null)
            {
                remove = isEmptyDir || (state.IsLeaf && current.IsRegularFile && current.Size == 0);
            }
            else
            {
                // A pure copy-up: the change runc caused is gone once the stub below is removed. An opaque directory
                // or a changed mode or owner is the step's own doing and stays.
                var was = state.Merged.Value;
                remove = isEmptyDir && was.IsDirectory && was.Permissions == current.Permissions && was.Uid == current.Uid
                    && was.Gid == current.Gid && !Interop.HasXattr(path, "trusted.overlay.opaque");
            }

            if (!remove)
            {
                continue;
            }

            if (current.IsDirectory)
            {
                Directory.Delete(path);
            }
            else
            {
                File.Delete(path);
            }

            removed.Add("/" + relative);
        }

        return removed;
    }

    private readonly record struct PathState(FileStat? Merged, bool InUpperBefore, bool IsLeaf);
}
