using Farm.Contracts;
using Farm.Containers.Snapshots;

namespace Farm.Containers.Tests;

public sealed class LayerStoreTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("farm-layerstore-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static LayerRef Layer(char c) =>
        new("sha256:" + new string(c, 64), "sha256:" + new string(c, 63) + "0", "application/vnd.oci.image.layer.v1.tar+gzip", 10);

    private static LayerStore.ExtractLayer Writing(int bytes, Action? onExtract = null, TaskCompletionSource? gate = null) =>
        async (layer, source, dir, ct) =>
        {
            onExtract?.Invoke();
            if (gate is not null)
            {
                await gate.Task;
            }

            await File.WriteAllBytesAsync(Path.Combine(dir, "content"), new byte[bytes], ct);
        };

    [Fact]
    public async Task Concurrent_requests_for_one_layer_extract_it_once()
    {
        var calls = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var store = new LayerStore(_root, 1 << 30, Writing(100, () => Interlocked.Increment(ref calls), gate));
        var leases = Enumerable.Range(0, 8).Select(_ => store.AcquireAsync(Layer('a'), "test", CancellationToken.None)).ToList();
        gate.SetResult();
        var done = await Task.WhenAll(leases);

        Assert.Equal(1, calls);
        Assert.Single(done.Select(l => l.Directory).Distinct());
        Assert.True(File.Exists(Path.Combine(done[0].Directory, "content")));
        Assert.Equal(16, Path.GetFileName(Path.GetDirectoryName(done[0].Directory))!.Length);
    }

    [Fact]
    public async Task A_layer_whose_directories_link_to_each_other_is_stored_and_measured_without_following_the_links()
    {
        var store = new LayerStore(_root, 1 << 30, (layer, source, dir, ct) =>
        {
            // As Debian's node packages do: doc directories linking to their siblings, both ways.
            Directory.CreateDirectory(Path.Combine(dir, "doc", "a"));
            Directory.CreateDirectory(Path.Combine(dir, "doc", "b"));
            File.CreateSymbolicLink(Path.Combine(dir, "doc", "a", "b"), "../b");
            File.CreateSymbolicLink(Path.Combine(dir, "doc", "b", "a"), "../a");
            return File.WriteAllBytesAsync(Path.Combine(dir, "doc", "a", "content"), new byte[1000], ct);
        });

        using var lease = await store.AcquireAsync(Layer('a'), "test", CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(1));

        Assert.True(File.Exists(Path.Combine(lease.Directory, "doc", "b", "a", "content")));
        Assert.InRange(store.SizeBytes, 1000, 10_000);
    }

    [Fact]
    public async Task Least_recently_used_layers_are_evicted_beyond_the_budget_but_never_a_leased_one()
    {
        var store = new LayerStore(_root, 2500, Writing(1000));
        using (await store.AcquireAsync(Layer('a'), "test", CancellationToken.None))
        {
        }

        using var b = await store.AcquireAsync(Layer('b'), "test", CancellationToken.None);
        using (await store.AcquireAsync(Layer('c'), "test", CancellationToken.None))
        {
        }

        // a is the least recently used and unleased: it goes; b is leased and stays.
        Assert.Equal(2, store.Count);
        Assert.True(Directory.Exists(b.Directory));
        using var again = await store.AcquireAsync(Layer('a'), "test", CancellationToken.None);
        Assert.Equal(4, store.Extractions);
    }

    [Fact]
    public async Task A_reopened_store_reuses_complete_layers_and_drops_half_extracted_ones()
    {
        var first = new LayerStore(_root, 1 << 30, Writing(10));
        using (await first.AcquireAsync(Layer('a'), "test", CancellationToken.None))
        {
        }

        // A worker that died while extracting leaves a temporary directory behind.
        Directory.CreateDirectory(Path.Combine(_root, "tmp-0123456789ab", "fs"));
        var second = new LayerStore(_root, 1 << 30, Writing(10));

        Assert.Equal(1, second.Count);
        Assert.False(Directory.Exists(Path.Combine(_root, "tmp-0123456789ab")));
        using var lease = await second.AcquireAsync(Layer('a'), "test", CancellationToken.None);
        Assert.Equal(0, second.Extractions);
    }

    [Fact]
    public async Task A_failed_extraction_leaves_nothing_and_the_next_request_retries()
    {
        var fail = true;
        var store = new LayerStore(_root, 1 << 30, async (layer, source, dir, ct) =>
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "partial"), "x", ct);
            if (fail)
            {
                throw new IOException("blob store unreachable");
            }
        });

        await Assert.ThrowsAsync<IOException>(() => store.AcquireAsync(Layer('a'), "test", CancellationToken.None));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root));

        fail = false;
        using var lease = await store.AcquireAsync(Layer('a'), "test", CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(lease.Directory, "partial")));
    }
}
