using System.Security.Cryptography;
using System.Text;
using Farm.Containers.Sandbox;
using Farm.Oci.IO;
using Farm.Oci.Layers;

namespace Farm.Containers.Snapshots;

/// <summary>
/// Mounts overlayfs snapshots: extracted layers as read-only lowerdirs under a fresh upperdir.
/// </summary>
/// <remarks>
/// The kernel copies mount options into one page (4096 bytes), so 60 layers with long store paths do not fit.
/// Each lower directory gets a short symlink <c>&lt;root&gt;/l/&lt;8 chars&gt;</c> (Docker's overlay2 does the same)
/// and snapshots live under <c>&lt;root&gt;/s/&lt;8 chars&gt;</c>; absolute paths keep this safe in a
/// multi-threaded process, where chdir tricks are not. Layout:
/// <c>l/</c> layer links, <c>e/</c> an empty lowerdir for FROM scratch, <c>s/&lt;id&gt;/{u,w,m}</c> upper, work, merged.
/// </remarks>
public sealed class OverlaySnapshotter
{
    /// <summary>What the kernel accepts for the mount data argument, terminating NUL included.</summary>
    public const int MaxMountDataLength = 4095;

    private const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";

    private readonly string _root;

    /// <summary>Creates a snapshotter storing its links and snapshots under <paramref name="root"/> (keep it short).</summary>
    public OverlaySnapshotter(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        _root = Path.GetFullPath(root).TrimEnd('/');
        if (_root.IndexOfAny([',', ':', '\\']) >= 0)
        {
            throw new ArgumentException($"The snapshot root '{_root}' must not contain ',', ':' or '\\' (overlayfs option separators).", nameof(root));
        }
    }

    /// <summary>The directory holding links and snapshots.</summary>
    public string Root => _root;

    /// <summary>
    /// Mounts a new snapshot over <paramref name="lowerDirs"/> (topmost layer first; empty for FROM scratch).
    /// </summary>
    /// <exception cref="SnapshotException">A lower directory is missing, the options are too long, or mount(2) failed.</exception>
    public Task<OverlaySnapshot> CreateAsync(IReadOnlyList<string> lowerDirs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lowerDirs);
        cancellationToken.ThrowIfCancellationRequested();

        var lowers = lowerDirs.Count == 0 ? [EmptyLower()] : lowerDirs.Select(LinkFor).ToList();
        var id = RandomName();
        var dir = Path.Combine(_root, "s", id);
        var snapshot = new OverlaySnapshot(dir);
        try
        {
            Directory.CreateDirectory(snapshot.UpperDir);
            Directory.CreateDirectory(snapshot.WorkDir);
            Directory.CreateDirectory(snapshot.MergedDir);
            // The upperdir's root becomes the layer's "/" metadata; images expect 0755.
            UnixFile.Chmod(snapshot.UpperDir, 0x1ED /* 0755 */);

            var data = MountData(lowers, snapshot.UpperDir, snapshot.WorkDir);
            if (data.Length > MaxMountDataLength)
            {
                throw new SnapshotException(
                    $"the overlay mount options for {lowerDirs.Count} layers are {data.Length} bytes, over the kernel's limit of {MaxMountDataLength}; use a shorter snapshot root than '{_root}' or squash the base image.");
            }

            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                MountPoints.MountOverlay(snapshot.MergedDir, data);
            }
            catch (IOException e)
            {
                throw new SnapshotException(
                    $"mounting overlayfs at {snapshot.MergedDir} with {lowerDirs.Count} lower layers failed: {e.Message}; check that the worker runs as root, the kernel has overlayfs and the layer directories are intact. Options: {data}", e);
            }

            snapshot.MarkMounted();
            return Task.FromResult(snapshot);
        }
        catch
        {
            snapshot.Destroy();
            throw;
        }
    }

    /// <summary>
    /// Removes the short link of an evicted layer directory. Call it when the layer store deletes a layer that
    /// no mounted snapshot uses; links otherwise stay for the next snapshot of the same layer.
    /// </summary>
    public void ForgetLayer(string lowerDir)
    {
        var target = Path.GetFullPath(lowerDir).TrimEnd('/');
        var link = Path.Combine(_root, "l", ShortName(Encoding.UTF8.GetBytes(target)));
        if (new FileInfo(link).LinkTarget == target)
        {
            File.Delete(link);
        }
    }

    internal static string MountData(IReadOnlyList<string> lowers, string upper, string work)
    {
        var data = $"lowerdir={string.Join(':', lowers)},upperdir={upper},workdir={work}";
        // index=on would tie each lower to the first upper it was used with; shared layers need it off.
        // redirect_dir and metacopy would put renames and metadata-only copies in xattrs the layer differ cannot express.
        const string parameters = "/sys/module/overlay/parameters/";
        if (File.Exists(parameters + "index"))
        {
            data += ",index=off";
        }

        if (File.Exists(parameters + "redirect_dir"))
        {
            data += ",redirect_dir=off";
        }

        if (File.Exists(parameters + "metacopy"))
        {
            data += ",metacopy=off";
        }

        return data;
    }

    private string EmptyLower()
    {
        var empty = Path.Combine(_root, "e");
        Directory.CreateDirectory(empty);
        return empty;
    }

    private string LinkFor(string lowerDir)
    {
        var target = Path.GetFullPath(lowerDir).TrimEnd('/');
        if (!Directory.Exists(target))
        {
            throw new SnapshotException($"the layer directory {target} does not exist; extract the layer before mounting it.");
        }

        var links = Path.Combine(_root, "l");
        Directory.CreateDirectory(links);
        var link = Path.Combine(links, ShortName(Encoding.UTF8.GetBytes(target)));
        if (new FileInfo(link).LinkTarget is { } existing)
        {
            if (existing == target)
            {
                return link;
            }

            throw new SnapshotException($"the layer link {link} points to {existing}, not {target}; remove {links} to rebuild the links.");
        }

        // Build aside and rename into place: concurrent snapshots of the same layer race on this name.
        var temp = link + "." + RandomName();
        File.CreateSymbolicLink(temp, target);
        // rename(2): File.Move refuses to move a symlink to a directory.
        if (Interop.Rename(temp, link) != 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new SnapshotException($"renaming the layer link {temp} to {link} failed: {Interop.ErrorText(errno)} (errno {errno}).");
        }

        return link;
    }

    private static string RandomName() => ShortName(RandomNumberGenerator.GetBytes(16));

    private static string ShortName(byte[] input)
    {
        var hash = SHA256.HashData(input);
        var chars = new char[8];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = Base32[hash[i] & 31];
        }

        return new string(chars);
    }
}

/// <summary>A mounted overlayfs snapshot. Disposing unmounts it and deletes its directories.</summary>
public sealed class OverlaySnapshot : IAsyncDisposable
{
    private bool _mounted;

    internal OverlaySnapshot(string directory)
    {
        Directory = directory;
        UpperDir = Path.Combine(directory, "u");
        WorkDir = Path.Combine(directory, "w");
        MergedDir = Path.Combine(directory, "m");
    }

    /// <summary>The snapshot's own directory (holds u, w and m).</summary>
    public string Directory { get; }

    /// <summary>Where the step's changes land; whiteouts are 0/0 character devices, opaque dirs carry trusted.overlay.opaque.</summary>
    public string UpperDir { get; }

    /// <summary>overlayfs's scratch directory.</summary>
    public string WorkDir { get; }

    /// <summary>The mounted root file system to run in.</summary>
    public string MergedDir { get; }

    /// <summary>Whether the overlay is still mounted.</summary>
    public bool IsMounted => _mounted;

    /// <summary>
    /// Unmounts the overlay and removes the sandbox's mount-point stubs from the upperdir, which is then
    /// ready to be read as the step's layer.
    /// </summary>
    /// <returns>The container paths of the stubs removed.</returns>
    public IReadOnlyList<string> Seal(MountStubs stubs)
    {
        ArgumentNullException.ThrowIfNull(stubs);
        Unmount();
        return stubs.RemoveFrom(UpperDir);
    }

    /// <summary>Unmounts the overlay, keeping the upperdir.</summary>
    /// <exception cref="SnapshotException">umount2(2) failed.</exception>
    public void Unmount()
    {
        if (!_mounted)
        {
            return;
        }

        try
        {
            // A busy mount is detached and goes once the process holding it exits.
            MountPoints.Unmount(MergedDir);
        }
        catch (IOException e)
        {
            throw new SnapshotException($"unmounting the overlay at {MergedDir} failed: {e.Message}; find the process using it (fuser -m {MergedDir}) and unmount it by hand.", e);
        }

        _mounted = false;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Destroy();
        return ValueTask.CompletedTask;
    }

    internal void MarkMounted() => _mounted = true;

    internal void Destroy()
    {
        Unmount();
        if (System.IO.Directory.Exists(Directory))
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SnapshotException($"removing the snapshot directory {Directory} failed; delete it by hand.", e);
            }
        }
    }
}
