using Farm.Containers.Sandbox;
using Farm.Containers.Snapshots;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.IO;
using Farm.Oci.Layers;

namespace Farm.Containers;

/// <summary>
/// A container's root file system: the image's layers extracted once per machine into a <see cref="LayerStore"/>, the
/// init layer over them, and the container's upperdir, mounted as one overlay while it runs.
/// </summary>
/// <remarks>
/// Like Docker's <c>-init</c> layer, the mount points runc needs (/proc, /dev, /sys, /etc/hosts, ...) are created in a
/// lower layer of their own, so the container's upperdir holds only its own changes and <c>farm commit</c> writes it
/// as it is.
/// </remarks>
internal sealed class ContainerFilesystem(ContainerStore store)
{
    private static readonly string[] InitDirectories = ["proc", "dev", "sys", "etc"];
    private static readonly string[] InitFiles = ["etc/resolv.conf", "etc/hosts", "etc/hostname"];

    /// <summary>Makes the init layer of a new container and mounts its root file system.</summary>
    public async Task CreateAsync(ContainerState state, LocalImageStore images, CancellationToken cancellationToken)
    {
        var lowers = await LowerDirectoriesAsync(state, images, cancellationToken).ConfigureAwait(false);
        CreateInitLayer(store.PathsOf(state.Id), lowers, state.Mounts);
        await MountAsync(state, images, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Mounts the container's root file system unless it is mounted already.</summary>
    public async Task MountAsync(ContainerState state, LocalImageStore images, CancellationToken cancellationToken)
    {
        var paths = store.PathsOf(state.Id);
        if (MountPoints.IsMountPoint(paths.Merged))
        {
            return;
        }

        var lowers = await LowerDirectoriesAsync(state, images, cancellationToken).ConfigureAwait(false);
        if (!Directory.Exists(paths.Upper))
        {
            Directory.CreateDirectory(paths.Upper);
            UnixFile.Chmod(paths.Upper, 0x1ED /* 0755 */);
        }

        Directory.CreateDirectory(paths.Work);
        Directory.CreateDirectory(paths.Merged);
        MountOverlay([paths.Init, .. lowers], paths.Upper, paths.Work, paths.Merged);
    }

    /// <summary>Unmounts the container's root file system if it is mounted (detached when still busy).</summary>
    public void Unmount(ContainerState state) => Unmount(store.PathsOf(state.Id).Merged);

    private async Task<IReadOnlyList<string>> LowerDirectoriesAsync(ContainerState state, LocalImageStore images, CancellationToken cancellationToken)
    {
        // Extracted once per machine and kept (no eviction budget): a container's layers must outlive its image's name.
        // One farm process at a time: a LayerStore opening removes the half-extracted layers it finds, which would
        // be another process's extraction in progress.
        using var exclusive = ContainerStore.LockFile(Path.Combine(store.StateDirectory, "layers.lock"));
        var layers = new LayerStore(Path.Combine(store.StateDirectory, "layers"), long.MaxValue, async (layer, _, target, ct) =>
        {
            var blob = await images.Layout.OpenReadAsync(Digest.Parse(layer.Digest), ct).ConfigureAwait(false);
            await using (blob.ConfigureAwait(false))
            {
                // Devices as the worker applies them: present in the file system, denied by the container's device rule.
                var applied = await LayerReader.ApplyAsync(blob, target, new LayerApplyOptions { OverlayLowerDir = true, AllowDevices = true }, ct).ConfigureAwait(false);
                if (applied.DiffId.ToString() != layer.DiffId)
                {
                    throw new DigestMismatchException(Digest.Parse(layer.DiffId), applied.DiffId, $"The uncompressed layer {layer.Digest}");
                }
            }
        });
        var dirs = new List<string>();
        foreach (var layer in state.Layers)
        {
            using var lease = await layers.AcquireAsync(layer, images.Root, cancellationToken).ConfigureAwait(false);
            dirs.Add(lease.Directory);
        }

        // Overlay wants the topmost layer first.
        dirs.Reverse();
        if (dirs.Count == 0)
        {
            var empty = store.PathsOf(state.Id).EmptyLower;
            Directory.CreateDirectory(empty);
            dirs.Add(empty);
        }

        return dirs;
    }

    /// <remarks>
    /// The mount points runc needs (and those of <c>-v</c> and <c>--mount</c>) are made here, in a layer of their own
    /// beneath the container's upperdir, so that a commit does not take them for changes of the container (docker's
    /// <c>-init</c> layer).
    /// </remarks>
    private static void CreateInitLayer(ContainerPaths paths, IReadOnlyList<string> imageLowers, IReadOnlyList<ContainerMount> mounts)
    {
        foreach (var d in (string[])[paths.Init, paths.InitWork, paths.Merged])
        {
            Directory.CreateDirectory(d);
        }

        UnixFile.Chmod(paths.Init, 0x1ED /* 0755 */);
        MountOverlay(imageLowers, paths.Init, paths.InitWork, paths.Merged);
        try
        {
            foreach (var d in InitDirectories)
            {
                var path = RootfsPath.Resolve(paths.Merged, d);
                if (UnixFile.Lstat(path) is null)
                {
                    Directory.CreateDirectory(path);
                    UnixFile.Chmod(path, 0x1ED);
                }
            }

            foreach (var mount in mounts)
            {
                var path = RootfsPath.Resolve(paths.Merged, mount.Target.TrimStart('/'));
                if (UnixFile.Lstat(path) is null)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    if (mount.Type == ContainerMountType.Bind && File.Exists(mount.Source))
                    {
                        File.WriteAllBytes(path, []);
                        UnixFile.Chmod(path, 0x1A4 /* 0644 */);
                    }
                    else
                    {
                        Directory.CreateDirectory(path);
                        UnixFile.Chmod(path, 0x1ED /* 0755 */);
                    }
                }
            }

            foreach (var f in InitFiles)
            {
                var path = RootfsPath.Resolve(paths.Merged, f);
                if (UnixFile.Lstat(path) is null && Directory.Exists(Path.GetDirectoryName(path)))
                {
                    File.WriteAllBytes(path, []);
                    UnixFile.Chmod(path, 0x1A4 /* 0644 */);
                }
            }
        }
        finally
        {
            Unmount(paths.Merged);
            Directory.Delete(paths.InitWork, recursive: true);
        }
    }

    private static void MountOverlay(IReadOnlyList<string> lowers, string upper, string work, string merged)
    {
        var data = OverlaySnapshotter.MountData(lowers, upper, work);
        if (data.Length > OverlaySnapshotter.MaxMountDataLength)
        {
            throw new ContainerRuntimeException($"the overlay mount options for {lowers.Count} layers are {data.Length} bytes, over the kernel's limit; use a shorter FARM_STATE_DIR or an image with fewer layers.");
        }

        try
        {
            MountPoints.MountOverlay(merged, data);
        }
        catch (IOException e)
        {
            throw new ContainerRuntimeException($"mounting the container's overlay at {merged} failed: {e.Message}; farm run needs root and a kernel with overlayfs.", e);
        }
    }

    private static void Unmount(string merged)
    {
        if (Directory.Exists(merged) && MountPoints.IsMountPoint(merged))
        {
            try
            {
                MountPoints.Unmount(merged);
            }
            catch (IOException e)
            {
                throw new ContainerRuntimeException($"unmounting the container's overlay at {merged} failed: {e.Message}; find the process using it (fuser -m {merged}).", e);
            }
        }
    }
}
