using Farm.Containers.Sandbox;
using Farm.Containers.Snapshots;

namespace Farm.Containers.Tests;

[Collection(SandboxCollection.Name)]
public sealed class OverlaySnapshotterTests(SandboxFixture fx)
{
    [Fact]
    public async Task Sixty_layers_with_long_paths_mount_and_the_top_layer_wins()
    {
        // Long store paths on purpose: 60 of them would not fit in one page without the short links.
        var store = Path.Combine(fx.Root, "layers", new string('d', 120));
        var layers = new List<string>();
        for (var i = 0; i < 60; i++)
        {
            var dir = Path.Combine(store, $"sha256-{i:D3}-{new string('x', 40)}");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "f"), $"layer {i}");
            File.WriteAllText(Path.Combine(dir, $"only{i}"), "");
            layers.Add(dir);
        }

        Assert.True(layers.Sum(l => l.Length + 1) > OverlaySnapshotter.MaxMountDataLength, "the test layers' paths should not fit into one page by themselves");

        await using var snap = await fx.Snapshotter.CreateAsync(layers, CancellationToken.None);

        Assert.Equal("layer 0", File.ReadAllText(Path.Combine(snap.MergedDir, "f")));
        Assert.All(Enumerable.Range(0, 60), i => Assert.True(File.Exists(Path.Combine(snap.MergedDir, $"only{i}"))));
    }

    [Fact]
    public async Task From_scratch_mounts_with_no_lower_layers()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([], CancellationToken.None);

        Assert.Empty(Directory.EnumerateFileSystemEntries(snap.MergedDir));
        File.WriteAllText(Path.Combine(snap.MergedDir, "hello"), "x");
        snap.Unmount();

        Assert.Equal("x", File.ReadAllText(Path.Combine(snap.UpperDir, "hello")));
    }

    [Fact]
    public async Task Dispose_unmounts_and_removes_the_snapshot()
    {
        var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);
        Assert.Equal([snap.MergedDir], SandboxFixture.MountsUnder(snap.Directory));

        await snap.DisposeAsync();

        Assert.Empty(SandboxFixture.MountsUnder(snap.Directory));
        Assert.False(Directory.Exists(snap.Directory));
        Assert.True(File.Exists(Path.Combine(fx.BaseLayer, "bin", "busybox")));
    }

    [Fact]
    public async Task A_missing_layer_fails_clearly_and_leaves_nothing_behind()
    {
        var before = Directory.Exists(Path.Combine(fx.Snapshotter.Root, "s"))
            ? Directory.GetDirectories(Path.Combine(fx.Snapshotter.Root, "s")).Length
            : 0;

        var e = await Assert.ThrowsAsync<SnapshotException>(
            () => fx.Snapshotter.CreateAsync([fx.BaseLayer, Path.Combine(fx.Root, "nope")], CancellationToken.None));

        Assert.Equal("FARM3004", e.Code);
        Assert.Contains("nope", e.Message);
        var after = Directory.Exists(Path.Combine(fx.Snapshotter.Root, "s"))
            ? Directory.GetDirectories(Path.Combine(fx.Snapshotter.Root, "s")).Length
            : 0;
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task A_cancelled_create_mounts_nothing()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fx.Snapshotter.CreateAsync([fx.BaseLayer], cts.Token));
    }

    [Fact]
    public async Task Two_snapshots_of_one_layer_are_independent_and_share_its_link()
    {
        var layer = Path.Combine(fx.Root, "layers", "shared");
        Directory.CreateDirectory(layer);
        File.WriteAllText(Path.Combine(layer, "f"), "base");

        await using var a = await fx.Snapshotter.CreateAsync([layer], CancellationToken.None);
        await using var b = await fx.Snapshotter.CreateAsync([layer], CancellationToken.None);
        File.WriteAllText(Path.Combine(a.MergedDir, "f"), "changed in a");

        Assert.Equal("base", File.ReadAllText(Path.Combine(b.MergedDir, "f")));
        Assert.Equal("base", File.ReadAllText(Path.Combine(layer, "f")));
        Assert.Single(Directory.EnumerateFileSystemEntries(Path.Combine(fx.Snapshotter.Root, "l")), l => new FileInfo(l).LinkTarget == layer);

        fx.Snapshotter.ForgetLayer(layer);

        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(Path.Combine(fx.Snapshotter.Root, "l")), l => new FileInfo(l).LinkTarget == layer);
    }
}
