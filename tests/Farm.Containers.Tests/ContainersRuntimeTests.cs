using Farm.Oci.Images;
using Farm.Oci.IO;
using Farm.Oci.Layers;
using Farm.Testing;
using Farm.Containers;

namespace Farm.Containers.Tests;

/// <summary>
/// The container runtime as a library, with faults injected where the machine cannot be made to fail: a runc whose
/// pause is refused, as where the cgroup freezer is unavailable, and one whose kill is refused, as where runc cannot
/// read the container's freezer state.
/// </summary>
public sealed class ContainersRuntimeTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine("/tmp", "fct" + Guid.NewGuid().ToString("N")[..6]);

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Commit_without_a_freezer_warns_and_still_commits_the_running_containers_changes()
    {
        using var started = await StartUnderRuncRefusingAsync("pause", "freezer not available", "echo changed > /changed.txt; exec sleep 600");
        var (runtime, images, image, container) = (started.Runtime, started.Images, started.Image, started.Container);
        try
        {
            await Wait.UntilAsync(() => File.Exists(Path.Combine(runtime.RootfsPath(container), "changed.txt")), TimeSpan.FromSeconds(60), () => "the container to write /changed.txt");

            var warnings = new StringWriter();
            var committed = await runtime.CommitAsync(container, new ContainerCommitOptions { Name = "committed:1" }, images, warnings, CancellationToken.None);

            Assert.StartsWith($"farm: warning: {container.Name} could not be paused (freezer not available); committing while it runs", warnings.ToString(), StringComparison.Ordinal);
            Assert.Equal(image.Manifest.Layers.Count + 1, committed.Manifest.Layers.Count);
            var applied = Directory.CreateDirectory(Path.Combine(_dir, "applied")).FullName;
            await using (var layer = await images.Layout.OpenReadAsync(committed.Manifest.Layers[^1].Digest, CancellationToken.None))
            {
                await LayerReader.ApplyAsync(layer, applied, new LayerApplyOptions(), CancellationToken.None);
            }

            Assert.Equal("changed\n", await File.ReadAllTextAsync(Path.Combine(applied, "changed.txt")));
            Assert.Equal(ContainerStatus.Running, runtime.Refresh(container).Status);
        }
        finally
        {
            await runtime.RemoveAsync(container, force: true, CancellationToken.None);
            Assert.Equal(137, await started.Supervisor);
        }

        Assert.DoesNotContain(State, await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_container_runc_refuses_to_kill_is_still_removed_and_leaves_no_mount()
    {
        using var started = await StartUnderRuncRefusingAsync("kill", "unable to get freezer state", "echo up > /up.txt; exec sleep 600");
        var (runtime, container) = (started.Runtime, started.Container);
        try
        {
            await Wait.UntilAsync(() => File.Exists(Path.Combine(runtime.RootfsPath(container), "up.txt")), TimeSpan.FromSeconds(60), () => "the container to write /up.txt");
        }
        finally
        {
            await runtime.RemoveAsync(container, force: true, CancellationToken.None);
        }

        Assert.Equal(137, await started.Supervisor);
        Assert.Null(runtime.Store.TryLoad(container.Id));
        Assert.DoesNotContain(State, await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
    }

    private string State => Path.Combine(_dir, "state");

    /// <summary>
    /// Creates and supervises a busybox container running <paramref name="script"/> under a runc that fails
    /// <paramref name="verb"/> with <paramref name="refusal"/> on stderr (and runs every other command as the real runc).
    /// </summary>
    private async Task<StartedContainer> StartUnderRuncRefusingAsync(string verb, string refusal, string script)
    {
        var runc = Path.Combine(_dir, "runc-refusing-" + verb);
        await File.WriteAllTextAsync(runc, $"#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = {verb} ] && {{ echo '{refusal}' >&2; exit 1; }}; done\nexec runc \"$@\"\n");
        UnixFile.Chmod(runc, 0x1ED);
        var runtime = new ContainerRuntime(State, runc);
        var images = await LocalImageStore.OpenAsync(State, CancellationToken.None);
        try
        {
            var rootfs = BusyboxRootfs.Write(Path.Combine(_dir, "rootfs.tar"));
            LocalImage image;
            await using (var tar = File.OpenRead(rootfs))
            {
                image = await images.ImportAsync(tar, rootfs, "bb", null, null, CancellationToken.None);
            }

            var container = await runtime.CreateAsync(
                new ContainerCreateOptions { Image = "bb", Command = ["sh", "-c", script], Network = ContainerNetwork.None },
                image, images, CancellationToken.None);
            var supervisor = Task.Run(() => runtime.SuperviseAsync(container.Id, recordOutput: false, CancellationToken.None));
            return new StartedContainer(runtime, images, image, container, supervisor);
        }
        catch
        {
            images.Dispose();
            throw;
        }
    }

    /// <summary>A supervised container and the image store it came from (disposed with it).</summary>
    private sealed record StartedContainer(ContainerRuntime Runtime, LocalImageStore Images, LocalImage Image, ContainerState Container, Task<int> Supervisor) : IDisposable
    {
        public void Dispose() => Images.Dispose();
    }
}
