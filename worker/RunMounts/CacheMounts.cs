using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Farm.Oci.IO;

namespace Farm.Worker.RunMounts;

/// <summary>
/// The directories of <c>RUN --mount=type=cache</c> on this worker: one per tenant and cache id under
/// <c>cache-mounts/</c> in its state directory, kept across builds (and worker restarts), never part of a layer or a
/// cache key. How concurrent steps meet follows BuildKit's <c>sharing</c>: <c>shared</c> steps use the directory at
/// once, a <c>private</c> step that finds it in use gets another directory of the same id (kept too, and reused by the
/// next private step that finds the first one busy), <c>locked</c> steps take turns.
/// </summary>
/// <remarks>On this worker only: a farm-wide cache (one holder of a locked id across workers, snapshots in the blob store) is not built yet.</remarks>
public sealed class CacheMounts
{
    private readonly string _root;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Instance> _instances = new(StringComparer.Ordinal);

    /// <param name="root">The directory the caches live under.</param>
    public CacheMounts(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
        // Other users of the machine have no business in a tenant's caches.
        UnixFile.Chmod(_root, 0x1C0 /* 0700 */);
    }

    /// <summary>Where the caches live.</summary>
    public string Root => _root;

    /// <summary>
    /// Takes the directory of cache <paramref name="id"/> of <paramref name="tenant"/> for one step, waiting for a
    /// <c>locked</c> one. Dispose the lease when the step ended.
    /// </summary>
    /// <param name="tenant">The build's tenant; null without auth.</param>
    /// <param name="id">The cache id.</param>
    /// <param name="sharing"><c>shared</c>, <c>private</c> or <c>locked</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    public async Task<CacheLease> AcquireAsync(string? tenant, string id, string sharing, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        var key = Key(tenant, id);
        Instance instance;
        lock (_gate)
        {
            instance = Find(key, 0);
            if (sharing == "private")
            {
                // The first instance not in use, else a new one.
                var n = 0;
                while (instance.Users > 0)
                {
                    instance = Find(key, ++n);
                }
            }

            instance.Users++;
        }

        try
        {
            if (sharing == "locked")
            {
                await instance.Turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            lock (_gate)
            {
                instance.Users--;
            }

            throw;
        }

        var directory = Path.Combine(_root, instance.Name);
        var fresh = !Directory.Exists(directory);
        Directory.CreateDirectory(directory);
        return new CacheLease(directory, fresh, () =>
        {
            if (sharing == "locked")
            {
                instance.Turn.Release();
            }

            lock (_gate)
            {
                instance.Users--;
            }
        });
    }

    private Instance Find(string key, int n)
    {
        var name = n == 0 ? key : key + "." + n.ToString(CultureInfo.InvariantCulture);
        if (!_instances.TryGetValue(name, out var instance))
        {
            instance = new Instance(name);
            _instances[name] = instance;
        }

        return instance;
    }

    /// <summary>A file name for the pair: ids are free text (a path, often), tenants are names.</summary>
    private static string Key(string? tenant, string id) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes((tenant ?? string.Empty) + "\0" + id)))[..32];

    private sealed class Instance(string name)
    {
        public string Name { get; } = name;

        public int Users { get; set; }

        public SemaphoreSlim Turn { get; } = new(1, 1);
    }
}

/// <summary>One step's use of a cache directory.</summary>
public sealed class CacheLease : IDisposable
{
    private Action? _release;

    internal CacheLease(string directory, bool fresh, Action release)
    {
        Directory = directory;
        Fresh = fresh;
        _release = release;
    }

    /// <summary>The cache's directory on the worker.</summary>
    public string Directory { get; }

    /// <summary>True when the directory was made for this step (it starts empty, or from the mount's <c>from</c>).</summary>
    public bool Fresh { get; }

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}
