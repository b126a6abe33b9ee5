using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;
using Farm.Oci.IO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Worker.RunMounts;

/// <summary>
/// The directories of <c>RUN --mount=type=cache</c> on this worker: one per tenant and cache id under
/// <c>cache-mounts/</c> in its state directory, kept across builds (and worker restarts), never part of a layer or a
/// cache key. How concurrent steps meet follows BuildKit's <c>sharing</c>: <c>shared</c> steps use the directory at
/// once, a <c>private</c> step that finds it in use gets another directory of the same id (kept too, and reused by the
/// next private step that finds the first one busy), <c>locked</c> steps take turns.
/// </summary>
/// <remarks>
/// With <see cref="FarmCacheSettings"/> (a worker of a shared farm) a cache is a farm-wide object (docs/architecture.md,
/// "Cache mounts across the farm"): a <c>locked</c> step also holds the cache's lease from the coordinators' grain, so
/// one step at a time uses it across every worker; before the step, a directory that is not at the cache's latest
/// snapshot (never held here, or another worker wrote since) is replaced by that snapshot, fetched from the blob store;
/// after a step that succeeded, the directory is stored as a new snapshot and published, off the step's path (the
/// job's result does not wait for it; a locked lease is held until it is done, so the next holder starts from it).
/// </remarks>
public sealed partial class CacheMounts
{
    private readonly string _root;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Instance> _instances = new(StringComparer.Ordinal);
    private readonly FarmCacheSettings? _farm;
    private readonly CacheSnapshots? _snapshots;
    private readonly ILogger _logger;
    private readonly List<Task> _publishing = [];

    /// <param name="root">The directory the caches live under.</param>
    /// <param name="farm">The farm-wide side; null keeps every cache on this worker only (the local farm).</param>
    public CacheMounts(string root, FarmCacheSettings? farm = null)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
        // Other users of the machine have no business in a tenant's caches.
        UnixFile.Chmod(_root, 0x1C0 /* 0700 */);
        _farm = farm;
        _logger = farm?.Logger ?? NullLogger.Instance;
        if (farm is not null)
        {
            _snapshots = new CacheSnapshots(farm);
            foreach (var left in Directory.EnumerateDirectories(_root).Where(d => d.EndsWith(".restore", StringComparison.Ordinal) || d.EndsWith(".old", StringComparison.Ordinal)))
            {
                // A restore a killed worker did not finish.
                Directory.Delete(left, recursive: true);
            }
        }
    }

    /// <summary>Where the caches live.</summary>
    public string Root => _root;

    /// <summary>Whether caches are shared with the farm's other workers.</summary>
    public bool FarmWide => _farm is not null;

    /// <summary>
    /// Takes the directory of cache <paramref name="id"/> of <paramref name="tenant"/> for one step, waiting for a
    /// <c>locked</c> one, on this worker only. Dispose the lease when the step ended.
    /// </summary>
    public Task<CacheLease> AcquireAsync(string? tenant, string id, string sharing, CancellationToken cancellationToken) =>
        AcquireAsync(tenant, id, sharing, blobStore: null, readOnly: false, cancellationToken);

    /// <summary>
    /// Takes the directory of cache <paramref name="id"/> of <paramref name="tenant"/> for one step, waiting for a
    /// <c>locked</c> one (across the farm when this worker is part of one and <paramref name="blobStore"/> is given).
    /// Call <see cref="CacheLease.Succeeded"/> when the step succeeded, then dispose the lease.
    /// </summary>
    /// <param name="tenant">The build's tenant; null without auth.</param>
    /// <param name="id">The cache id.</param>
    /// <param name="sharing"><c>shared</c>, <c>private</c> or <c>locked</c>.</param>
    /// <param name="blobStore">The job's blob store, where snapshots are kept; null: this worker only.</param>
    /// <param name="readOnly">The step mounts it read-only: nothing of it is published.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <exception cref="CacheMountCoordinationException">The coordinators did not answer (FARM3140).</exception>
    public async Task<CacheLease> AcquireAsync(string? tenant, string id, string sharing, string? blobStore, bool readOnly, CancellationToken cancellationToken)
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

        var locked = sharing == "locked";
        var turn = false;
        var setup = false;
        FarmUse? farm = null;
        try
        {
            if (locked)
            {
                await instance.Turn.WaitAsync(cancellationToken).ConfigureAwait(false);
                turn = true;
            }

            var directory = Path.Combine(_root, instance.Name);
            var fresh = !Directory.Exists(directory);
            Directory.CreateDirectory(directory);
            var restored = false;
            if (_farm is not null && _snapshots is not null && blobStore is not null)
            {
                // Asking the farm and applying its snapshot happen one user at a time per directory: a shared user
                // must not find the directory half replaced.
                await instance.Setup.WaitAsync(cancellationToken).ConfigureAwait(false);
                setup = true;
                farm = new FarmUse(tenant, id, sharing, blobStore, Guid.NewGuid()) { ReadOnly = readOnly };
                var granted = await AcquireFarmAsync(farm, cancellationToken).ConfigureAwait(false);
                if (locked)
                {
                    farm.StartRenewing(this);
                }

                if (granted.Latest is { } latest && latest.Digest != ReadMark(directory) && instance.Active == 0)
                {
                    restored = await _snapshots.RestoreAsync(latest, directory, cancellationToken).ConfigureAwait(false);
                    if (restored)
                    {
                        WriteMark(directory, latest.Digest);
                    }
                }

                instance.Active++;
                instance.Setup.Release();
                setup = false;
            }

            var lease = new CacheLease(directory, fresh && !restored, restored, succeeded => Finish(instance, directory, locked, farm, succeeded));
            return lease;
        }
        catch
        {
            if (farm is not null)
            {
                await farm.StopRenewingAsync().ConfigureAwait(false);
                if (farm.Granted)
                {
                    // Let the next holder in at once rather than after the lease runs out.
                    await ReleaseFarmAsync(farm, null, CancellationToken.None).ConfigureAwait(false);
                }
            }

            if (setup)
            {
                instance.Setup.Release();
            }

            if (turn)
            {
                instance.Turn.Release();
            }

            lock (_gate)
            {
                instance.Users--;
            }

            throw;
        }
    }

    /// <summary>Waits until every snapshot started so far is published (or given up), for tests and a stopping worker.</summary>
    public Task WhenPublishedAsync()
    {
        lock (_gate)
        {
            _publishing.RemoveAll(t => t.IsCompleted);
            return Task.WhenAll(_publishing);
        }
    }

    /// <summary>
    /// The end of one use: on this worker the directory is free again at once; farm-wide, the lease is released (with a
    /// new snapshot when the step succeeded) in the background and the directory stays taken until that is done.
    /// </summary>
    private void Finish(Instance instance, string directory, bool locked, FarmUse? farm, bool succeeded)
    {
        void ReleaseLocal()
        {
            if (locked)
            {
                instance.Turn.Release();
            }

            lock (_gate)
            {
                instance.Users--;
                if (farm is not null)
                {
                    instance.Active--;
                }
            }
        }

        if (farm is null)
        {
            ReleaseLocal();
            return;
        }

        var task = Task.Run(async () =>
        {
            try
            {
                CacheSnapshot? snapshot = null;
                if (succeeded && !farm.ReadOnly)
                {
                    snapshot = await _snapshots!.TakeAsync(directory, farm, ReadMark(directory), CancellationToken.None).ConfigureAwait(false);
                }

                await farm.StopRenewingAsync().ConfigureAwait(false);
                var answer = await ReleaseFarmAsync(farm, snapshot, CancellationToken.None).ConfigureAwait(false);
                if (snapshot is not null && answer?.Granted == true)
                {
                    WriteMark(directory, snapshot.Digest);
                }
            }
            catch (Exception e)
            {
                LogPublishFailed(_logger, e, farm.Id);
            }
            finally
            {
                ReleaseLocal();
            }
        });
        lock (_gate)
        {
            _publishing.RemoveAll(t => t.IsCompleted);
            _publishing.Add(task);
        }
    }

    /// <summary>Asks for the cache until it is granted (a <c>locked</c> one waits for its holder); a few failed requests in a row fail the step.</summary>
    private async Task<CacheMountGranted> AcquireFarmAsync(FarmUse use, CancellationToken cancellationToken)
    {
        var farm = _farm!;
        var delay = TimeSpan.FromMilliseconds(100);
        var failures = 0;
        var waitingLogged = false;
        while (true)
        {
            CacheMountGranted granted;
            try
            {
                granted = await farm.Coordinator.AcquireAsync(
                    new AcquireCacheMount { Tenant = use.Tenant, Id = use.Id, Sharing = use.Sharing, Worker = farm.Worker, Holder = use.Holder, LeaseTime = farm.LeaseTime },
                    cancellationToken).ConfigureAwait(false);
                failures = 0;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not FarmException)
            {
                if (++failures >= MaxFailures)
                {
                    throw new CacheMountCoordinationException($"the coordinators did not answer about the cache '{use.Id}' after {failures} tries ({e.Message}); the step did not run, since running it without the farm's lock could corrupt the cache. Check that RabbitMQ and a coordinator are up", e);
                }

                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (granted.Granted)
            {
                use.Granted = true;
                if (waitingLogged)
                {
                    LogLockTaken(_logger, use.Id, farm.Worker);
                }

                return granted;
            }

            if (!waitingLogged)
            {
                LogWaitingForLock(_logger, use.Id, granted.HeldBy ?? "another worker");
                waitingLogged = true;
            }

            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }

    private async Task<CacheMountGranted?> ReleaseFarmAsync(FarmUse use, CacheSnapshot? snapshot, CancellationToken cancellationToken)
    {
        var farm = _farm!;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await farm.Coordinator.ReleaseAsync(
                    new ReleaseCacheMount { Tenant = use.Tenant, Id = use.Id, Sharing = use.Sharing, Worker = farm.Worker, Holder = use.Holder, Snapshot = snapshot },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < MaxFailures && e is not OperationCanceledException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The lease runs out by itself; the snapshot is lost, which only costs warmth.
                LogReleaseFailed(_logger, e, use.Id);
                return null;
            }
        }
    }

    private const int MaxFailures = 3;

    /// <summary>The snapshot a directory is at (as applied or published here), kept beside it; null for none.</summary>
    private static string? ReadMark(string directory)
    {
        try
        {
            return File.ReadAllText(directory + ".snapshot").Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static void WriteMark(string directory, string digest)
    {
        var temporary = directory + ".snapshot.tmp";
        File.WriteAllText(temporary, digest);
        File.Move(temporary, directory + ".snapshot", overwrite: true);
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

    /// <summary>
    /// The name of a cache of a tenant: a directory name on each worker and the key of its grain on the coordinators.
    /// Ids are free text (a path, often), tenants are names; the pair is hashed so that neither can be confused with
    /// the other's (<c>tenant\0id</c>).
    /// </summary>
    public static string Key(string? tenant, string id) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes((tenant ?? string.Empty) + "\0" + id)))[..32];

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}' is locked by {Holder}: waiting for it")]
    private static partial void LogWaitingForLock(ILogger logger, string id, string holder);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}' lock taken by {Worker}")]
    private static partial void LogLockTaken(ILogger logger, string id, string worker);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}': its snapshot could not be published; the next worker starts from the previous one")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}': the coordinators did not take its release; a locked lease runs out by itself")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}': the lease could not be renewed ({Reason}); the step goes on, and its snapshot will be refused if another worker took the lease")]
    private static partial void LogRenewFailed(ILogger logger, string id, string reason);

    private sealed class Instance(string name)
    {
        public string Name { get; } = name;

        /// <summary>Steps that use or wait for the directory.</summary>
        public int Users { get; set; }

        /// <summary>Farm-wide: steps past the set-up, so that the directory is in use (no snapshot may replace it).</summary>
        public int Active { get; set; }

        public SemaphoreSlim Turn { get; } = new(1, 1);

        public SemaphoreSlim Setup { get; } = new(1, 1);
    }

    /// <summary>One step's farm-wide use of a cache: what it asked for and, when locked, the renewal of its lease.</summary>
    internal sealed class FarmUse(string? tenant, string id, string sharing, string blobStore, Guid holder) : IDisposable
    {
        private CancellationTokenSource? _renewal;
        private Task? _renewing;

        public string? Tenant { get; } = tenant;

        public string Id { get; } = id;

        public string Sharing { get; } = sharing;

        public string BlobStore { get; } = blobStore;

        public Guid Holder { get; } = holder;

        public bool Granted { get; set; }

        public bool ReadOnly { get; init; }

        public void StartRenewing(CacheMounts owner)
        {
            var farm = owner._farm!;
            _renewal = new CancellationTokenSource();
            var token = _renewal.Token;
            _renewing = Task.Run(async () =>
            {
                var every = farm.LeaseTime / 3;
                while (!token.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(every, token).ConfigureAwait(false);
                        var renewed = await farm.Coordinator.RenewAsync(new RenewCacheMount { Tenant = Tenant, Id = Id, Holder = Holder, LeaseTime = farm.LeaseTime }, token).ConfigureAwait(false);
                        if (!renewed.Granted)
                        {
                            LogRenewFailed(owner._logger, Id, $"held by {renewed.HeldBy}");
                            return;
                        }
                    }
                    catch (OperationCanceledException) when (token.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception e)
                    {
                        // The next tick tries again; the lease lasts three ticks.
                        LogRenewFailed(owner._logger, Id, e.Message);
                    }
                }
            }, CancellationToken.None);
        }

        public async Task StopRenewingAsync()
        {
            if (_renewal is null)
            {
                return;
            }

            await _renewal.CancelAsync().ConfigureAwait(false);
            await _renewing!.ConfigureAwait(false);
            _renewal.Dispose();
            _renewal = null;
        }

        public void Dispose() => _renewal?.Dispose();
    }
}

/// <summary>What a worker of a shared farm needs to share its cache mounts with the other workers.</summary>
public sealed record FarmCacheSettings
{
    /// <summary>Where the leases and the latest snapshots are asked for.</summary>
    public required ICacheMountCoordinator Coordinator { get; init; }

    /// <summary>This worker's name.</summary>
    public required string Worker { get; init; }

    /// <summary>Opens the blob stores snapshots go to and come from.</summary>
    public required Oci.Stores.BlobStoreLocator Stores { get; init; }

    /// <summary>Where snapshot blobs are written before upload.</summary>
    public required string Scratch { get; init; }

    /// <summary>A cache bigger than this (bytes of its files) is not published: the snapshot is skipped, with a log line.</summary>
    public long MaxSnapshotBytes { get; init; } = 1L << 30;

    /// <summary>How long a <c>locked</c> lease lasts unless renewed (renewed every third of it while the step runs).</summary>
    public TimeSpan LeaseTime { get; init; } = TimeSpan.FromSeconds(30);

    public ILogger? Logger { get; init; }
}

/// <summary>One step's use of a cache directory.</summary>
public sealed class CacheLease : IDisposable
{
    private Action<bool>? _release;
    private bool _succeeded;

    internal CacheLease(string directory, bool fresh, bool restored, Action<bool> release)
    {
        Directory = directory;
        Fresh = fresh;
        Restored = restored;
        _release = release;
    }

    /// <summary>The cache's directory on the worker.</summary>
    public string Directory { get; }

    /// <summary>True when the directory was made empty for this step (it starts empty, or from the mount's <c>from</c>).</summary>
    public bool Fresh { get; }

    /// <summary>True when the directory was replaced by the cache's latest snapshot from another worker for this step.</summary>
    public bool Restored { get; }

    /// <summary>The step succeeded: its cache may be published (a failed step's never is).</summary>
    public void Succeeded() => _succeeded = true;

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke(_succeeded);
}
