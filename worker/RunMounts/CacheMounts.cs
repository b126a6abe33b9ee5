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
/// after a step that succeeded, what it changed in the directory is captured (<see cref="CacheSnapshots.Capture"/>),
/// the lease is released at once with a new generation that this worker holds, and the capture is stored and published
/// off the step's path. The next step here goes on from the directory without waiting; a step on another worker waits
/// for the snapshot (<see cref="FarmCacheSettings.PublishWait"/>).
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
                    granted = await WaitForNewestAsync(farm, instance, granted, cancellationToken).ConfigureAwait(false);
                }

                restored = await CatchUpAsync(instance, directory, farm.Id, granted, cancellationToken).ConfigureAwait(false);
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
    public async Task WhenPublishedAsync()
    {
        // Until none is left: the end of a step starts its snapshot's publishing.
        while (true)
        {
            Task[] publishing;
            lock (_gate)
            {
                _publishing.RemoveAll(t => t.IsCompleted);
                publishing = [.. _publishing];
            }

            if (publishing.Length == 0)
            {
                return;
            }

            await Task.WhenAll(publishing).ConfigureAwait(false);
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
            CacheCapture? capture = null;
            var capturing = false;
            try
            {
                if (succeeded && !farm.ReadOnly)
                {
                    // Captured before the cache is let go, so that what is published is what this step left, whatever
                    // the next step writes; one capture at a time per directory (shared users end together).
                    await instance.Capturing.WaitAsync().ConfigureAwait(false);
                    capturing = true;
                    var before = CacheManifest.Read(directory + ManifestSuffix);
                    int chain;
                    long room;
                    lock (_gate)
                    {
                        chain = instance.Chain;
                        room = instance.BaseBytes / 2 - instance.DeltaBytes;
                    }

                    capture = _snapshots!.Capture(directory, farm.Id, before, delta => chain >= MaxChain || delta > room);
                }

                await farm.StopRenewingAsync().ConfigureAwait(false);
                var answer = await ReleaseFarmAsync(farm, null, CancellationToken.None, changed: capture is not null).ConfigureAwait(false);
                if (capture is not null)
                {
                    var taken = capture;
                    capture = null;
                    Adopt(instance, directory, farm, taken, answer);
                }
            }
            catch (Exception e)
            {
                LogPublishFailed(_logger, e, farm.Id);
                if (capture is not null)
                {
                    CacheSnapshots.Discard(capture);
                }
            }
            finally
            {
                if (capturing)
                {
                    instance.Capturing.Release();
                }

                ReleaseLocal();
            }
        });
        Track(task);
    }

    private void Track(Task task)
    {
        lock (_gate)
        {
            _publishing.RemoveAll(t => t.IsCompleted);
            _publishing.Add(task);
        }
    }

    /// <summary>Blobs in a chain past which the next change is published whole (the chain starts again).</summary>
    internal const int MaxChain = 8;

    private const string ManifestSuffix = ".manifest";

    /// <summary>
    /// The farm took (or refused) a capture of the directory: when it took it, the directory is its generation, the
    /// manifest becomes the capture's and its snapshot is stored and published in the background, after the snapshots
    /// captured before it on this worker (a delta needs the blob below it); when it refused it (the lease had gone to
    /// another worker), the directory is at no snapshot the farm knows.
    /// </summary>
    private void Adopt(Instance instance, string directory, FarmUse farm, CacheCapture capture, CacheMountGranted? answer)
    {
        DeleteMark(directory);
        if (answer?.Granted != true)
        {
            CacheSnapshots.Discard(capture);
            File.Delete(directory + ManifestSuffix);
            lock (_gate)
            {
                instance.Epoch++;
                instance.Generation = 0;
                instance.Tip = Task.FromResult<CacheSnapshot?>(null);
            }

            return;
        }

        capture.Manifest.Write(directory + ManifestSuffix);
        lock (_gate)
        {
            var epoch = ++instance.Epoch;
            instance.Generation = answer.Generation;
            if (capture.Delta)
            {
                instance.Chain++;
                instance.DeltaBytes += capture.Bytes;
            }
            else
            {
                instance.Chain = 1;
                instance.BaseBytes = capture.Bytes;
                instance.DeltaBytes = 0;
            }

            var parent = instance.Tip;
            var publishing = PublishAsync(instance, directory, farm, capture, answer.Generation, parent, epoch);
            instance.Tip = publishing;
            Track(publishing);
        }
    }

    /// <summary>Stores a capture once the one before it is stored, then tells the farm; the snapshot, or null when it could not be stored.</summary>
    private async Task<CacheSnapshot?> PublishAsync(Instance instance, string directory, FarmUse farm, CacheCapture capture, long generation, Task<CacheSnapshot?> below, int epoch)
    {
        await Task.Yield();
        CacheSnapshot? snapshot = null;
        try
        {
            var parent = await below.ConfigureAwait(false);
            if (capture.Delta && parent is null)
            {
                CacheSnapshots.Discard(capture);
                throw new InvalidOperationException("the snapshot this delta is over was not stored");
            }

            snapshot = await _snapshots!.PublishAsync(capture, parent, farm, generation, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogPublishFailed(_logger, e, farm.Id);
            lock (_gate)
            {
                if (instance.Epoch == epoch)
                {
                    // The next change goes whole: no delta can stand on this one.
                    File.Delete(directory + ManifestSuffix);
                }
            }
        }

        var answer = await PublishFarmAsync(farm, generation, snapshot).ConfigureAwait(false);
        if (snapshot is not null && answer?.Granted == true)
        {
            lock (_gate)
            {
                if (instance.Epoch == epoch)
                {
                    WriteMark(directory, snapshot.Digest);
                }
            }
        }

        return snapshot;
    }

    private async Task<CacheMountGranted?> PublishFarmAsync(FarmUse use, long generation, CacheSnapshot? snapshot)
    {
        var farm = _farm!;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await farm.Coordinator.PublishAsync(
                    new PublishCacheSnapshot { Tenant = use.Tenant, Id = use.Id, Worker = farm.Worker, Generation = generation, Snapshot = snapshot },
                    CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception) when (attempt < MaxFailures)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt)).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Workers waiting for this generation wait out Farm:Worker:CachePublishWait, then use the latest published.
                LogReleaseFailed(_logger, e, use.Id);
                return null;
            }
        }
    }

    /// <summary>
    /// A <c>locked</c> holder whose cache's newest generation is still being published by another worker waits for
    /// that snapshot (it holds the lease meanwhile, so nobody else writes), up to <see cref="FarmCacheSettings.PublishWait"/>;
    /// then it goes on from the latest published snapshot, with a log line. The newest generation on this worker's own
    /// directory needs no wait.
    /// </summary>
    private async Task<CacheMountGranted> WaitForNewestAsync(FarmUse use, Instance instance, CacheMountGranted granted, CancellationToken cancellationToken)
    {
        var farm = _farm!;
        var deadline = DateTimeOffset.UtcNow + farm.PublishWait;
        var delay = TimeSpan.FromMilliseconds(100);
        var logged = false;
        while (granted.NewestOn is { } newest && !IsMine(instance, granted))
        {
            if (newest == farm.Worker)
            {
                // This worker's, from before it restarted: the snapshot will not come.
                LogNewestGone(_logger, use.Id, granted.Generation, newest);
                break;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                LogNewestLate(_logger, use.Id, newest, granted.Generation, farm.PublishWait);
                break;
            }

            if (!logged)
            {
                LogWaitingForNewest(_logger, use.Id, newest, granted.Generation);
                logged = true;
            }

            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            granted = await AcquireFarmAsync(use, cancellationToken).ConfigureAwait(false);
        }

        return granted;
    }

    private bool IsMine(Instance instance, CacheMountGranted granted)
    {
        lock (_gate)
        {
            return granted.NewestOn == _farm!.Worker && granted.Generation > 0 && instance.Generation == granted.Generation;
        }
    }

    /// <summary>
    /// Brings the directory to the farm's newest state before a step: as it is when it holds the newest generation
    /// (this worker wrote it, its snapshot may still be on its way) or the latest snapshot; otherwise replaced by the
    /// latest snapshot, unless another step on this worker uses it. True when it was replaced.
    /// </summary>
    private async Task<bool> CatchUpAsync(Instance instance, string directory, string id, CacheMountGranted granted, CancellationToken cancellationToken)
    {
        if (IsMine(instance, granted))
        {
            LogNewestHere(_logger, id, granted.Generation);
            return false;
        }

        if (granted.Latest is not { } latest)
        {
            return false;
        }

        var tip = instance.Tip.IsCompletedSuccessfully ? instance.Tip.Result : null;
        if (latest.Digest == tip?.Digest)
        {
            return false;
        }

        if (latest.Digest == ReadMark(directory))
        {
            // At it already (this worker restarted since, say): deltas can go on from it.
            var manifest = CacheManifest.Read(directory + ManifestSuffix);
            lock (_gate)
            {
                if (instance.Tip.IsCompleted)
                {
                    Chained(instance, latest, manifest?.FileBytes ?? 0);
                }
            }

            return false;
        }

        if (instance.Active > 0)
        {
            return false;
        }

        var restored = await CatchUpInPlaceAsync(latest, tip?.Digest ?? ReadMark(directory), directory, cancellationToken).ConfigureAwait(false)
            ?? await _snapshots!.RestoreAsync(latest, directory, cancellationToken).ConfigureAwait(false);
        if (restored is null)
        {
            return false;
        }

        restored.Write(directory + ManifestSuffix);
        WriteMark(directory, latest.Digest);
        lock (_gate)
        {
            instance.Epoch++;
            instance.Generation = 0;
            Chained(instance, latest, restored.FileBytes);
        }

        return true;
    }

    /// <summary>
    /// When the latest snapshot is a chain over the one the directory is at (<paramref name="at"/>: another worker went
    /// on from what this one published or applied), and the directory is still exactly as that one left it, applies
    /// only the deltas above it, in place; null when that is not the case, or it failed (then the directory is
    /// restored whole).
    /// </summary>
    private async Task<CacheManifest?> CatchUpInPlaceAsync(CacheSnapshot latest, string? at, string directory, CancellationToken cancellationToken)
    {
        var below = false;
        for (var s = latest.Parent; s is not null && !below; s = s.Parent)
        {
            below = s.Digest == at;
        }

        var manifest = below ? CacheManifest.Read(directory + ManifestSuffix) : null;
        if (manifest is null || !CacheManifest.Walk(directory).Since(manifest).None)
        {
            return null;
        }

        // Half applied is at no snapshot: neither mark nor manifest stands until it is done.
        DeleteMark(directory);
        File.Delete(directory + ManifestSuffix);
        return await _snapshots!.CatchUpAsync(latest, at!, directory, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The directory is at <paramref name="snapshot"/>: the next delta goes over it, and its chain counts for compaction.</summary>
    private static void Chained(Instance instance, CacheSnapshot snapshot, long fileBytes)
    {
        instance.Tip = Task.FromResult<CacheSnapshot?>(snapshot);
        var blobs = new List<CacheSnapshot>();
        for (var s = snapshot; s is not null; s = s.Parent)
        {
            blobs.Add(s);
        }

        instance.Chain = blobs.Count;
        // The file bytes of the deltas are not recorded: estimated from the blobs' sizes against the whole one's.
        var whole = blobs[^1].Size;
        var deltas = blobs.Sum(b => b.Size) - whole;
        instance.BaseBytes = fileBytes;
        instance.DeltaBytes = whole > 0 ? (long)(fileBytes * ((double)deltas / whole)) : 0;
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

    private async Task<CacheMountGranted?> ReleaseFarmAsync(FarmUse use, CacheSnapshot? snapshot, CancellationToken cancellationToken, bool changed = false)
    {
        var farm = _farm!;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await farm.Coordinator.ReleaseAsync(
                    new ReleaseCacheMount { Tenant = use.Tenant, Id = use.Id, Sharing = use.Sharing, Worker = farm.Worker, Holder = use.Holder, Snapshot = snapshot, Changed = changed },
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

    private static void DeleteMark(string directory) => File.Delete(directory + ".snapshot");

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}': its newest generation {Generation} is still being published by {Worker}: waiting for it")]
    private static partial void LogWaitingForNewest(ILogger logger, string id, string worker, long generation);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}': {Worker} did not publish generation {Generation} within {Wait} (Farm:Worker:CachePublishWait); going on from the latest published snapshot")]
    private static partial void LogNewestLate(ILogger logger, string id, string worker, long generation, TimeSpan wait);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}': generation {Generation} was this worker's ({Worker}) before it restarted and will not be published; going on from the latest published snapshot")]
    private static partial void LogNewestGone(ILogger logger, string id, long generation, string worker);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}': this worker holds its newest generation {Generation}: used as it is")]
    private static partial void LogNewestHere(ILogger logger, string id, long generation);

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

        /// <summary>One capture at a time of the directory.</summary>
        public SemaphoreSlim Capturing { get; } = new(1, 1);

        /// <summary>The farm's generation the directory holds as the newest (made by a release here); 0: none known.</summary>
        public long Generation { get; set; }

        /// <summary>The snapshot the directory's manifest is at, once the publishing before it ends (null: none).</summary>
        public Task<CacheSnapshot?> Tip { get; set; } = Task.FromResult<CacheSnapshot?>(null);

        /// <summary>Blobs in <see cref="Tip"/>'s chain.</summary>
        public int Chain { get; set; }

        /// <summary>Bytes of files of the whole snapshot at the bottom of the chain, and of the deltas over it.</summary>
        public long BaseBytes { get; set; }

        public long DeltaBytes { get; set; }

        /// <summary>Changes with each capture and restore: a publishing that finds it changed leaves the mark alone.</summary>
        public int Epoch { get; set; }
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

    /// <summary>
    /// How long a <c>locked</c> step waits for the newest generation of its cache, still being published by the worker
    /// that wrote it, before it goes on from the latest published snapshot. 2 minutes by default.
    /// </summary>
    public TimeSpan PublishWait { get; init; } = TimeSpan.FromMinutes(2);

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
