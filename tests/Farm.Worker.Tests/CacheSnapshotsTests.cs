using Farm.Contracts;
using Farm.Oci.IO;
using Farm.Oci.Stores;
using Farm.Worker.RunMounts;

namespace Farm.Worker.Tests;

/// <summary>
/// Incremental cache snapshots on real directories and a real OCI layout store: the walk that finds what a step changed,
/// the delta it becomes, and a chain of deltas applied on another directory (another worker's).
/// </summary>
public sealed class CacheSnapshotsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cs-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly BlobStoreLocator _stores = new();
    private readonly CacheSnapshots _snapshots;
    private readonly CacheMounts.FarmUse _use;
    private readonly string _cache;

    public CacheSnapshotsTests()
    {
        var scratch = Path.Combine(_root, "scratch");
        Directory.CreateDirectory(scratch);
        _cache = Path.Combine(_root, "cache");
        Directory.CreateDirectory(_cache);
        _snapshots = new CacheSnapshots(new FarmCacheSettings { Coordinator = new NoCoordinator(), Worker = "w1", Stores = _stores, Scratch = scratch });
        _use = new CacheMounts.FarmUse(null, "pip", "locked", "oci-layout:" + Path.Combine(_root, "store"), Guid.NewGuid());
    }

    [Fact]
    public void An_unchanged_cache_captures_nothing_and_a_rewrite_that_keeps_size_and_time_is_still_seen()
    {
        Write("pkgs/a.whl", "aaaa");
        Write("index", "1");
        var first = _snapshots.Capture(_cache, "pip", null, _ => false)!;
        CacheSnapshots.Discard(first);

        Assert.Null(_snapshots.Capture(_cache, "pip", first.Manifest, _ => false));

        // Same size, modification time put back: only the change time tells.
        var path = Path.Combine(_cache, "pkgs/a.whl");
        var before = UnixFile.LstatExisting(path);
        File.WriteAllText(path, "bbbb");
        UnixFile.SetTimes(path, before.MtimeSeconds, before.MtimeNanoseconds);
        var second = _snapshots.Capture(_cache, "pip", first.Manifest, _ => false);
        Assert.NotNull(second);
        Assert.True(second.Delta);
        Assert.Equal(["pkgs/a.whl"], Files(second.Staging));
        CacheSnapshots.Discard(second);
    }

    [Fact]
    public async Task A_chain_of_deltas_applied_in_order_gives_the_cache_exactly_with_files_added_changed_and_deleted()
    {
        var big = new byte[1 << 20];
        new Random(17).NextBytes(big);
        File.WriteAllBytes(Path.Combine(Directory.CreateDirectory(Path.Combine(_cache, "wheels")).FullName, "big.whl"), big);
        Write("a/one", "one");
        Write("a/two", "two");
        Write("b/deep/three", "three");
        File.CreateSymbolicLink(Path.Combine(_cache, "latest"), "a/one");
        var (whole, manifest) = await PublishAsync(null, null);
        Assert.Null(whole.Parent);

        // Step two: one file changed, one added, one deleted, a directory tree deleted, a link changed.
        Write("a/one", "one, changed");
        Write("c/new", "new");
        File.Delete(Path.Combine(_cache, "a/two"));
        Directory.Delete(Path.Combine(_cache, "b"), recursive: true);
        File.Delete(Path.Combine(_cache, "latest"));
        File.CreateSymbolicLink(Path.Combine(_cache, "latest"), "c/new");
        UnixFile.Chmod(Path.Combine(_cache, "c/new"), 0x1ED /* 0755 */);
        var (second, manifest2) = await PublishAsync(whole, manifest);

        // Step three: what was a directory is a file now, and a deleted file is back.
        Write("b", "b is a file");
        Write("a/two", "two again");
        var (third, _) = await PublishAsync(second, manifest2);

        Assert.Same(second, third.Parent);
        Assert.Same(whole, third.Parent!.Parent);
        // The deltas hold what changed, not the unchanged megabyte.
        Assert.True(second.Size < whole.Size / 10 && third.Size < whole.Size / 10, $"whole {whole.Size}, deltas {second.Size} and {third.Size} bytes");

        var elsewhere = Path.Combine(_root, "other-worker", "cache");
        Directory.CreateDirectory(Path.GetDirectoryName(elsewhere)!);
        var restored = await _snapshots.RestoreAsync(third, elsewhere, CancellationToken.None);
        Assert.NotNull(restored);
        Assert.Equal(Tree(_cache), Tree(elsewhere));
        Assert.Equal("b is a file", File.ReadAllText(Path.Combine(elsewhere, "b")));
        Assert.False(File.Exists(Path.Combine(elsewhere, "b", "deep", "three")));
    }

    [Fact]
    public void A_delta_the_compaction_rule_refuses_is_captured_whole()
    {
        Write("base", new string('x', 1000));
        var first = _snapshots.Capture(_cache, "pip", null, _ => false)!;
        CacheSnapshots.Discard(first);
        Write("more", new string('y', 600));

        var delta = _snapshots.Capture(_cache, "pip", first.Manifest, bytes => bytes > 500)!;

        Assert.False(delta.Delta);
        Assert.Equal(["base", "more"], Files(delta.Staging));
        CacheSnapshots.Discard(delta);
    }

    private async Task<(CacheSnapshot Snapshot, CacheManifest Manifest)> PublishAsync(CacheSnapshot? parent, CacheManifest? before)
    {
        var capture = _snapshots.Capture(_cache, "pip", before, _ => false);
        Assert.NotNull(capture);
        Assert.Equal(before is not null, capture.Delta);
        var snapshot = await _snapshots.PublishAsync(capture, parent, _use, 1, CancellationToken.None);
        Assert.False(Directory.Exists(capture.Staging));
        return (snapshot, capture.Manifest);
    }

    private void Write(string relative, string content)
    {
        var path = Path.Combine(_cache, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    private static List<string> Files(string directory) =>
        [.. Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(directory, f)).Order(StringComparer.Ordinal)];

    /// <summary>Every path with its type, mode, link target and content: what a step reading the cache would see.</summary>
    private static List<string> Tree(string directory)
    {
        var lines = new List<string>();
        foreach (var path in Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var st = UnixFile.LstatExisting(path);
            var what = st.IsSymlink ? "-> " + new FileInfo(path).LinkTarget
                : st.IsRegularFile ? Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)))
                : string.Empty;
            lines.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Path.GetRelativePath(directory, path)} {st.Mode:x} {what}"));
        }

        return lines;
    }

    public void Dispose()
    {
        _stores.Dispose();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    /// <summary>These tests store and apply snapshots only; nothing asks the farm.</summary>
    private sealed class NoCoordinator : ICacheMountCoordinator
    {
        public Task<CacheMountGranted> AcquireAsync(AcquireCacheMount request, CancellationToken cancellationToken) => throw new InvalidOperationException("not asked in these tests");

        public Task<CacheMountGranted> RenewAsync(RenewCacheMount request, CancellationToken cancellationToken) => throw new InvalidOperationException("not asked in these tests");

        public Task<CacheMountGranted> ReleaseAsync(ReleaseCacheMount request, CancellationToken cancellationToken) => throw new InvalidOperationException("not asked in these tests");

        public Task<CacheMountGranted> PublishAsync(PublishCacheSnapshot request, CancellationToken cancellationToken) => throw new InvalidOperationException("not asked in these tests");
    }
}
