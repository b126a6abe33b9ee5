using Farm.Worker.RunMounts;

namespace Farm.Worker.Tests;

/// <summary>How concurrent users of one cache id meet on a worker (BuildKit's <c>sharing</c>), on a real directory.</summary>
public sealed class CacheMountsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cm-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Shared_users_get_the_same_directory_at_once()
    {
        var caches = new CacheMounts(_root);
        using var first = await caches.AcquireAsync(null, "/root/.cache", "shared", CancellationToken.None);
        using var second = await caches.AcquireAsync(null, "/root/.cache", "shared", CancellationToken.None);

        Assert.Equal(first.Directory, second.Directory);
        Assert.True(first.Fresh);
        Assert.False(second.Fresh);
    }

    [Fact]
    public async Task A_private_user_that_finds_the_cache_in_use_gets_a_directory_of_its_own_which_is_kept_for_later()
    {
        var caches = new CacheMounts(_root);
        string other;
        using (var first = await caches.AcquireAsync(null, "pip", "private", CancellationToken.None))
        {
            using var second = await caches.AcquireAsync(null, "pip", "private", CancellationToken.None);
            Assert.NotEqual(first.Directory, second.Directory);
            File.WriteAllText(Path.Combine(second.Directory, "kept"), "x");
            other = second.Directory;
        }

        // Both free again: the first directory serves first, the second one is found again when the first is busy.
        using var again = await caches.AcquireAsync(null, "pip", "private", CancellationToken.None);
        using var busy = await caches.AcquireAsync(null, "pip", "private", CancellationToken.None);
        Assert.Equal(other, busy.Directory);
        Assert.True(File.Exists(Path.Combine(busy.Directory, "kept")));
    }

    [Fact]
    public async Task A_locked_user_waits_until_the_holder_is_done()
    {
        var caches = new CacheMounts(_root);
        var holder = await caches.AcquireAsync(null, "apt", "locked", CancellationToken.None);

        var waiting = caches.AcquireAsync(null, "apt", "locked", CancellationToken.None);
        Assert.False(waiting.IsCompleted, "a second locked user got the cache while the first held it");

        holder.Dispose();
        using var next = await waiting.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(holder.Directory, next.Directory);
    }

    [Fact]
    public async Task Caches_of_the_same_id_are_kept_apart_by_tenant()
    {
        var caches = new CacheMounts(_root);
        using var acme = await caches.AcquireAsync("acme", "npm", "shared", CancellationToken.None);
        using var globex = await caches.AcquireAsync("globex", "npm", "shared", CancellationToken.None);
        using var none = await caches.AcquireAsync(null, "npm", "shared", CancellationToken.None);

        Assert.Equal(3, new[] { acme.Directory, globex.Directory, none.Directory }.Distinct().Count());
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
