using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Layers;
using Farm.Oci.Stores;
using Farm.Containers.Sandbox;
using Farm.Containers.Snapshots;
using Farm.Worker.Copy;
using Farm.Worker.RunMounts;

namespace Farm.Worker.Jobs;

/// <summary>
/// Turns one step into one layer: fetch and extract the parent layers (once per worker), mount them under a fresh
/// upperdir, run the step (RUN in runc, COPY/ADD, WORKDIR), write the upperdir as a layer, upload it.
/// </summary>
public sealed class LayerJobExecutor : ILayerJobExecutor, IDisposable, IAsyncDisposable
{
    private readonly BlobStoreLocator _stores;
    private readonly LayerStore _layers;
    private readonly OverlaySnapshotter _snapshotter;
    private readonly SandboxRunner _runner;
    private readonly CopyOperation _copy;
    private readonly HttpClient _http;
    private readonly string _scratch;
    private readonly string _built;
    private readonly long _builtBudget;
    private readonly TimeProvider _time;
    private readonly StepLimitsOptions _limits;
    private readonly IBuildSecretSource _secrets;
    private readonly HttpClient _coordinatorHttp;
    private long _bytesDownloaded;

    /// <param name="options">The worker's settings.</param>
    /// <param name="stores">Opens the jobs' blob stores.</param>
    /// <param name="time">The clock of the phase timings.</param>
    /// <param name="secrets">Where build secrets come from; none by default.</param>
    /// <param name="cacheCoordinator">The farm's side of cache mounts; null keeps them on this worker (the local farm).</param>
    /// <param name="logger">Logs of cache mounts.</param>
    public LayerJobExecutor(WorkerOptions options, BlobStoreLocator stores, TimeProvider? time = null, IBuildSecretSource? secrets = null, ICacheMountCoordinator? cacheCoordinator = null, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _stores = stores ?? throw new ArgumentNullException(nameof(stores));
        _time = time ?? TimeProvider.System;
        _limits = options.StepLimits;
        var state = Path.GetFullPath(options.StateDirectory);
        _scratch = Path.Combine(state, "tmp");
        Directory.CreateDirectory(_scratch);
        _built = Path.Combine(state, "built");
        Directory.CreateDirectory(_built);
        _builtBudget = options.LayerStoreBytes / 10;
        _layers = new LayerStore(Path.Combine(state, "layers"), options.LayerStoreBytes, ExtractAsync);
        _snapshotter = new OverlaySnapshotter(Path.Combine(state, "ov"));
        Firewall = options.Sandbox.Firewall ? new SandboxFirewall(options.Sandbox.Group, options.Sandbox.DeniedNetworks) : null;
        _runner = new SandboxRunner(new SandboxRunnerOptions { StateDirectory = Path.Combine(state, "run"), Firewall = Firewall });
        var connectTimeout = TimeSpan.FromSeconds(10);
        var fence = options.Sandbox.FenceFetches
            ? WorkerFetchRules.Fence(Firewall is { } firewall ? () => firewall.DeniedNetworks : () => [.. options.Sandbox.DeniedNetworks.Select(SandboxFirewall.ParseNetwork)])
            : null;
        _http = new HttpClient(fence?.Handler(connectTimeout) ?? new SocketsHttpHandler { ConnectTimeout = connectTimeout }) { Timeout = TimeSpan.FromMinutes(30) };
        _copy = new CopyOperation(_http, fence);
        Caches = new CacheMounts(
            Path.Combine(state, "cache-mounts"),
            cacheCoordinator is null ? null : new FarmCacheSettings
            {
                Coordinator = cacheCoordinator,
                Worker = options.Name,
                Stores = stores,
                Scratch = _scratch,
                MaxSnapshotBytes = options.CacheSnapshotMaxBytes,
                LeaseTime = options.CacheLeaseTime,
                PublishWait = options.CachePublishWait,
                Logger = logger,
            });
        _secrets = secrets ?? NoBuildSecrets.Instance;
        _coordinatorHttp = CoordinatorClient(options.CoordinatorCaPath);
    }

    /// <summary>The client for coordinators' APIs (a job's build secrets): no redirects, the operator's CA when given.</summary>
    private static HttpClient CoordinatorClient(string? caPath)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10), AllowAutoRedirect = false };
        if (!string.IsNullOrEmpty(caPath))
        {
            handler.SslOptions.RemoteCertificateValidationCallback = ServiceCertificates.TrustOnly(ServiceCertificates.LoadCa(caPath, "Farm:Worker:CoordinatorCaPath"));
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(2) };
    }

    /// <summary>The directories of <c>RUN --mount=type=cache</c> on this worker.</summary>
    public CacheMounts Caches { get; }

    /// <summary>The fence of RUN steps' private networks; null when <c>Farm:Worker:Sandbox:Firewall</c> is false.</summary>
    public SandboxFirewall? Firewall { get; }

    /// <summary>The extracted-layer store, for metrics and tests.</summary>
    public LayerStore Layers => _layers;

    /// <summary>Compressed bytes of the layer blobs downloaded and extracted since the process started, for metrics.</summary>
    public long BytesDownloaded => Interlocked.Read(ref _bytesDownloaded);

    public async Task<LayerJobResult> ExecuteAsync(BuildLayer job, Func<string, string, Task> output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(output);
        var timings = new PhaseTimings { Queued = job.EnqueuedAt, WorkerStart = Now() };
        var store = await _stores.OpenAsync(job.BlobStore, cancellationToken).ConfigureAwait(false);
        var leases = new List<LayerLease>();
        try
        {
            timings = timings with { InputFetchStart = Now() };
            var parents = await AcquireAllAsync(job.Parents, job.BlobStore, leases, cancellationToken).ConfigureAwait(false);
            var copySource = job.Step.Copy is { } copy
                ? await AcquireCopySourceAsync(copy.From, job.BlobStore, leases, cancellationToken).ConfigureAwait(false)
                : null;
            timings = timings with { InputFetchEnd = Now() };

            // Overlay wants the topmost lower first; parents come bottom first.
            await using var snapshot = await _snapshotter.CreateAsync([.. parents.AsEnumerable().Reverse()], cancellationToken).ConfigureAwait(false);
            await using var sourceView = copySource is { Count: > 1 }
                ? await _snapshotter.CreateAsync([.. copySource.AsEnumerable().Reverse()], cancellationToken).ConfigureAwait(false)
                : null;

            timings = timings with { ExecutionStart = Now() };
            var stubs = MountStubs.None;
            switch (job.Step.Kind)
            {
                case StepKind.Run:
                    stubs = await RunAsync(job, snapshot, output, cancellationToken).ConfigureAwait(false);
                    break;
                case StepKind.Copy or StepKind.Add:
                    await CopyAsync(job, job.Step.Kind == StepKind.Add, sourceView?.MergedDir ?? copySource?.SingleOrDefault() ?? string.Empty, snapshot.MergedDir, cancellationToken).ConfigureAwait(false);
                    break;
                case StepKind.Workdir:
                    WorkingDirectory.Create(snapshot.MergedDir, job.Step.Workdir ?? "/", UserResolver.Resolve(snapshot.MergedDir, job.Step.WorkdirUser));
                    break;
            }

            timings = timings with { ExecutionEnd = Now() };
            snapshot.Seal(stubs);

            timings = timings with { DiffStart = Now() };
            var layerFile = Path.Combine(_scratch, job.JobId.ToString("N") + ".layer");
            try
            {
                LayerResult result;
                var file = new FileStream(layerFile, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (file.ConfigureAwait(false))
                {
                    var compression = job.Compression == "zstd" ? LayerCompression.Zstd : LayerCompression.Gzip;
                    result = await LayerWriter.WriteUpperDirAsync(snapshot.UpperDir, file, new LayerWriteOptions { Compression = compression, ClampTimestamp = job.SourceDateEpoch }, cancellationToken).ConfigureAwait(false);
                    timings = timings with { DiffEnd = Now() };
                    if (result.IsEmpty)
                    {
                        var now = Now();
                        return new LayerJobResult(null, timings with { UploadStart = now, UploadEnd = now });
                    }

                    timings = timings with { UploadStart = Now() };
                    file.Position = 0;
                    // Every store skips a blob it already holds (IBlobStore.PutAsync): no separate check here.
                    await store.PutAsync(result.Descriptor, file, cancellationToken).ConfigureAwait(false);

                    timings = timings with { UploadEnd = Now() };
                }

                var d = result.Descriptor;
                if (RegistryHost(job.BlobStore) is not null)
                {
                    // Only a store across the network is worth a second copy: an OCI layout (the local farm) is on
                    // this disk already.
                    KeepBuilt(layerFile, d.Digest.ToString());
                }

                return new LayerJobResult(new LayerRef(d.Digest.ToString(), result.DiffId.ToString(), d.MediaType, d.Size), timings);
            }
            finally
            {
                File.Delete(layerFile);
            }
        }
        finally
        {
            foreach (var lease in leases)
            {
                lease.Dispose();
            }
        }
    }

    /// <summary>
    /// Removes what a previous process with this state directory left behind when it died mid-job: containers,
    /// mounted snapshots, scratch files. Call before taking jobs. Returns how many containers and snapshots went.
    /// </summary>
    public async Task<int> RecoverAsync(CancellationToken cancellationToken)
    {
        var removed = await _runner.RemoveAllContainersAsync(cancellationToken).ConfigureAwait(false);
        var snapshots = Path.Combine(_snapshotter.Root, "s");
        foreach (var mount in MountPoints.Under(snapshots))
        {
            // Detach: a process of the dead worker may still hold files open in it.
            MountPoints.Detach(mount);
        }

        if (Directory.Exists(snapshots))
        {
            foreach (var dir in Directory.EnumerateDirectories(snapshots))
            {
                Directory.Delete(dir, recursive: true);
                removed++;
            }
        }

        foreach (var mount in MountPoints.Under(_scratch))
        {
            // A dead job's secrets tmpfs: gone with the unmount.
            MountPoints.Detach(mount);
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(_scratch))
        {
            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }

        return removed;
    }

    private async Task<MountStubs> RunAsync(BuildLayer job, OverlaySnapshot snapshot, Func<string, string, Task> output, CancellationToken cancellationToken)
    {
        var run = job.Step.Run ?? throw new ArgumentException($"Job {job.JobId} is a RUN step without a command.", nameof(job));
        if (Firewall is not null && RegistryHost(job.BlobStore) is { } storeHost)
        {
            // The cache store is the farm's: no step may write to it behind the farm's back.
            await Firewall.DenyHostAsync(storeHost, cancellationToken).ConfigureAwait(false);
        }

        var inline = Path.Combine(_scratch, job.JobId.ToString("N") + ".files");
        var mounts = new List<BindMount>();
        var stepMounts = await StepMounts.CreateAsync(
            run.Mounts,
            new StepMountContext
            {
                BuildId = job.BuildId,
                JobId = job.JobId,
                Scratch = _scratch,
                Snapshotter = _snapshotter,
                AcquireAsync = async (from, leases, ct) => await AcquireCopySourceAsync(from, job.BlobStore, leases, ct).ConfigureAwait(false) ?? [],
                Caches = Caches,
                BlobStore = job.BlobStore,
                Copy = _copy,
                // A shared farm's job names where its build's secrets are and carries a credential for them; the
                // local farm's worker reads them from the coordinator in its process.
                Secrets = job.Secrets is { } grant ? new CoordinatorBuildSecrets(grant, _coordinatorHttp) : _secrets,
            },
            cancellationToken).ConfigureAwait(false);
        await using var undoMounts = stepMounts.ConfigureAwait(false);
        try
        {
            // Heredoc files are mounted, not written, so they do not end up in the layer.
            for (var i = 0; i < run.Files.Count; i++)
            {
                var file = run.Files[i];
                Directory.CreateDirectory(inline);
                var source = Path.Combine(inline, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await File.WriteAllTextAsync(source, file.Content, cancellationToken).ConfigureAwait(false);
                File.SetUnixFileMode(source, (UnixFileMode)file.Mode);
                mounts.Add(new BindMount(source, file.Path));
            }

            var result = await _runner.RunAsync(
                new RunSpec
                {
                    Args = run.Args,
                    RootfsPath = snapshot.MergedDir,
                    UpperDir = snapshot.UpperDir,
                    Env = stepMounts.Env.Count == 0 ? run.Env : [.. run.Env, .. stepMounts.Env],
                    WorkingDirectory = run.WorkingDir,
                    User = run.User,
                    Network = run.Network switch
                    {
                        "none" => NetworkMode.None,
                        "host" => NetworkMode.Host,
                        _ => NetworkMode.Private,
                    },
                    Mounts = [.. mounts, .. stepMounts.Binds],
                    Tmpfs = stepMounts.Tmpfs,
                    Limits = _limits.Resolve(run.Limits),
                    ExtraHosts = run.ExtraHosts,
                    ShmSizeBytes = run.ShmSizeBytes,
                    Ulimits = run.Ulimits,
                },
                (line, _) => new ValueTask(output(line.Stream == OutputStream.Stdout ? "stdout" : "stderr", line.Text)),
                cancellationToken).ConfigureAwait(false);
            stepMounts.Succeeded();
            return result.MountStubs;
        }
        finally
        {
            if (Directory.Exists(inline))
            {
                Directory.Delete(inline, recursive: true);
            }
        }
    }

    /// <summary>The host of a <c>registry://HOST[:PORT]/REPOSITORY</c> blob store; null for any other store.</summary>
    private static string? RegistryHost(string blobStore)
    {
        const string scheme = "registry://";
        if (!blobStore.StartsWith(scheme, StringComparison.Ordinal))
        {
            return null;
        }

        var authority = blobStore[scheme.Length..].Split('/')[0];
        return Uri.TryCreate("http://" + authority, UriKind.Absolute, out var uri) ? uri.IdnHost.Trim('[', ']') : null;
    }

    private async Task CopyAsync(BuildLayer job, bool isAdd, string sourceRoot, string targetRoot, CancellationToken cancellationToken)
    {
        var copy = job.Step.Copy!;
        if (copy.Files.Count > 0)
        {
            // COPY <<EOF: the heredoc bodies are the sources, as files in a context of their own.
            var inline = Path.Combine(_scratch, job.JobId.ToString("N") + ".copy");
            try
            {
                foreach (var file in copy.Files)
                {
                    var path = RootfsPath.Resolve(inline, file.Path);
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    await File.WriteAllTextAsync(path, file.Content, cancellationToken).ConfigureAwait(false);
                    File.SetUnixFileMode(path, (UnixFileMode)file.Mode);
                }

                var inlineCopy = copy with { Files = [], Sources = [.. copy.Files.Select(f => f.Path)], From = new CopySource { ContextDigest = "inline" } };
                await CopyAsync(job with { Step = job.Step with { Copy = inlineCopy } }, isAdd, inline, targetRoot, cancellationToken).ConfigureAwait(false);
                return;
            }
            finally
            {
                if (Directory.Exists(inline))
                {
                    Directory.Delete(inline, recursive: true);
                }
            }
        }

        var request = new CopyRequest
        {
            SourceRoot = sourceRoot,
            SourceKind = copy.From.ContextDigest is not null ? CopySourceKind.BuildContext : CopySourceKind.RootFilesystem,
            Sources = copy.Sources,
            Destination = copy.Destination,
            WorkingDirectory = copy.WorkingDir,
            TargetRoot = targetRoot,
            Chown = copy.Chown,
            Chmod = copy.Chmod,
            Excludes = copy.Exclude,
            Checksum = copy.Checksum,
            Parents = copy.Parents,
            KeepGitDir = copy.KeepGitDir,
            GitCommits = copy.GitCommits,
        };
        _ = isAdd ? await _copy.AddAsync(request, cancellationToken).ConfigureAwait(false) : await _copy.CopyAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private async Task<List<string>> AcquireAllAsync(IReadOnlyList<LayerRef> layers, string storeAddress, List<LayerLease> leases, CancellationToken cancellationToken)
    {
        var tasks = layers.Select(l => _layers.AcquireAsync(l, storeAddress, cancellationToken)).ToList();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            // When one layer fails, the others' leases must still be returned, or they could never be evicted.
            leases.AddRange(tasks.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
        }

        return [.. tasks.Select(t => t.Result.Directory)];
    }

    private async Task<List<string>?> AcquireCopySourceAsync(CopySource from, string storeAddress, List<LayerLease> leases, CancellationToken cancellationToken)
    {
        if (from.ContextDigest is { } context)
        {
            // A context tar is an uncompressed layer without whiteouts: the layer store caches its extraction too.
            return await AcquireAllAsync([new LayerRef(context, context, MediaTypes.OciLayerTar, 0)], storeAddress, leases, cancellationToken).ConfigureAwait(false);
        }

        return await AcquireAllAsync(from.Layers ?? [], storeAddress, leases, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Keeps the blob of a layer this worker built and stored (<c>built/</c>, at most a tenth of the layer store's budget,
    /// oldest first out), so that a later job with it as a parent, which cache affinity sends here, extracts it without
    /// fetching it (docs/architecture.md, "A build, step by step", 6).
    /// </summary>
    private void KeepBuilt(string layerFile, string digest)
    {
        File.Move(layerFile, BuiltPath(digest), overwrite: true);
        var kept = new DirectoryInfo(_built).GetFiles().OrderByDescending(f => f.LastWriteTimeUtc).ToList();
        long total = 0;
        foreach (var blob in kept)
        {
            total += blob.Length;
            if (total > _builtBudget)
            {
                blob.Delete();
            }
        }
    }

    private string BuiltPath(string digest) => Path.Combine(_built, digest.Replace(':', '-'));

    /// <summary>The kept blob, or null when there is none (never kept, or evicted meanwhile: then it is fetched).</summary>
    private static FileStream? OpenBuilt(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    private async Task ExtractAsync(LayerRef layer, string source, string target, CancellationToken cancellationToken)
    {
        var built = BuiltPath(layer.Digest);
        if (OpenBuilt(built) is { } local)
        {
            // Built here: the same bytes as in the store (the diff_id is checked all the same), and no fetch. Used once:
            // the extracted layer serves from now on, and a blob that failed to apply is not tried again.
            try
            {
                await using (local.ConfigureAwait(false))
                {
                    await ApplyAsync(local, layer, target, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                File.Delete(built);
            }

            return;
        }

        var store = await _stores.OpenAsync(source, cancellationToken).ConfigureAwait(false);
        var digest = Digest.Parse(layer.Digest);
        var blob = await store.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        await using (blob.ConfigureAwait(false))
        {
            await ApplyAsync(blob, layer, target, cancellationToken).ConfigureAwait(false);
        }

        Interlocked.Add(ref _bytesDownloaded, layer.Size);
    }

    private static async Task ApplyAsync(Stream blob, LayerRef layer, string target, CancellationToken cancellationToken)
    {
        // Device nodes are applied as docker, containerd and buildah apply them (a debootstrapped base has /dev/console);
        // a RUN step still cannot open one: its runtime spec denies every device but runc's defaults.
        var applied = await LayerReader.ApplyAsync(blob, target, new LayerApplyOptions { OverlayLowerDir = true, AllowDevices = true }, cancellationToken).ConfigureAwait(false);
        if (applied.DiffId.ToString() != layer.DiffId)
        {
            throw new DigestMismatchException(Digest.Parse(layer.DiffId), applied.DiffId, $"The uncompressed layer {layer.Digest}");
        }
    }

    private DateTimeOffset Now() => _time.GetUtcNow();

    /// <summary>Removes the private networks kept ready for RUN steps (slirp4netns processes and namespaces).</summary>
    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _coordinatorHttp.Dispose();
        await _runner.DisposeAsync().ConfigureAwait(false);
        Firewall?.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
