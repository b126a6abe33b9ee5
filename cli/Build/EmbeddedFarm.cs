using System.Net;
using System.Net.Sockets;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Cache;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Hosting;
using Farm.Oci.Images;
using Farm.Oci.Stores;
using Farm.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Cli.Build;

/// <summary>
/// The farm inside the <c>farm</c> process (docs/architecture.md, "Local builds"): the same orchestrator, layer grains and
/// worker as the cluster, over an in-memory bus and a localhost silo on free ports with memory grain storage. All
/// state is under one directory: the cache store IS the local image store's OCI layout (so local images' layers are
/// parents without copying, and built images are named there without copying), the action cache is files in
/// <c>action-cache</c>, the worker's layer store is in <c>worker</c>.
/// </summary>
/// <remarks>
/// The silo, the bus and the worker start only when a step misses the action cache (<see cref="DeferredGrainFactory"/>):
/// a rebuild with nothing changed plans, checks the cache and assembles without them.
/// </remarks>
internal sealed class EmbeddedFarm : IAsyncDisposable
{
    private readonly string _stateDirectory;
    private readonly BlobStoreLocator _stores = new();
    private readonly BuildLogHub _logs = new(NullLogger<BuildLogHub>.Instance);
    private readonly DeferredGrainFactory _grains;
    private readonly BuildOrchestrator _orchestrator;
    private IHost? _host;
    private FileStream? _workerLock;
    private string? _privateWorkerDirectory;

    public EmbeddedFarm(string stateDirectory, LocalImageStore images, ILocalImageSource baseImages)
    {
        ArgumentNullException.ThrowIfNull(images);
        _stateDirectory = stateDirectory;
        CacheStore = "oci-layout:" + images.Root;
        _grains = new DeferredGrainFactory(StartAsync);
        var cache = new VerifyingActionCache(
            new FileActionCache(Path.Combine(stateDirectory, "action-cache")),
            images.Layout,
            NullLogger<VerifyingActionCache>.Instance);
        _orchestrator = new BuildOrchestrator(_grains, cache, _stores, _logs, localImages: baseImages);
    }

    /// <summary>The blob store address builds use: the local image store's layout.</summary>
    public string CacheStore { get; }

    /// <summary>Whether this build needed the silo and the worker (some step was not cached).</summary>
    public bool Started => _grains.Started;

    public Task<BuildResult> RunAsync(BuildRequest request, IProgress<BuildEvent> progress, CancellationToken cancellationToken) =>
        _orchestrator.RunAsync(request, progress, cancellationToken);

    /// <summary>
    /// Starts the silo, the bus and the worker now, in the background, when a step will probably run (a context the
    /// store has never seen, <c>--no-cache</c>): their start-up then overlaps planning and the cache checks instead of
    /// delaying the first job. Only as root; a failure surfaces when a step needs them.
    /// </summary>
    public void Prestart()
    {
        if (Environment.IsPrivilegedProcess)
        {
            _ = _grains.StartedAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_grains.Started)
        {
            try
            {
                await _grains.StartedAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Reported to the build that needed the farm; a prestart no step needed fails silently.
            }
        }

        if (_host is not null)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _host.StopAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The process ends right after; nothing persistent is left half-written by a slow stop.
            }

            _host.Dispose();
        }

        _stores.Dispose();
        if (_workerLock is not null)
        {
            await _workerLock.DisposeAsync().ConfigureAwait(false);
        }

        if (_privateWorkerDirectory is not null)
        {
            try
            {
                Directory.Delete(_privateWorkerDirectory, recursive: true);
            }
            catch (IOException)
            {
                // A busy mount or file: left for the next start's recovery.
            }
        }
    }

    private async Task<IGrainFactory> StartAsync(CancellationToken cancellationToken)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new EmbeddedFarmNeedsRootException();
        }

        var slots = Math.Max(1, Environment.ProcessorCount);
        var workerDirectory = WorkerDirectory();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ApplicationName = "farm" });
        builder.Logging.ClearProviders();
        builder.AddFarmCoordinator(
            o =>
            {
                o.Transport = FarmTransport.InMemory;
                o.Redis = null;
                o.SiloPort = FreePort();
                o.GatewayPort = FreePort();
                o.ClusterId = $"farm-embedded-{Environment.ProcessId}";
                o.ServiceId = "farm-embedded";
            },
            bus => bus.AddFarmWorkerConsumers(slots));
        builder.Services.AddFarmWorker(o =>
        {
            o.Name = "embedded";
            o.StateDirectory = workerDirectory;
            o.Slots = slots;
        });

        // The orchestrator listens on this hub; the coordinator's log consumer must publish to the same one.
        builder.Services.AddSingleton(_logs);
        var host = builder.Build();

        // The hosted services (worker heartbeats, the bus) start outside the build's trace: their own spans are not the
        // build's. The change stays in this method's execution context.
        System.Diagnostics.Activity.Current = null;
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        _host = host;
        return host.Services.GetRequiredService<IGrainFactory>();
    }

    /// <summary>
    /// <c>worker</c> under the state directory, held by a lock: its start-up recovery removes containers and mounts
    /// a killed predecessor left, so a second concurrent build must not share it; that one gets a private directory.
    /// </summary>
    private string WorkerDirectory()
    {
        var shared = Path.Combine(_stateDirectory, "worker");
        Directory.CreateDirectory(shared);
        try
        {
            _workerLock = new FileStream(Path.Combine(_stateDirectory, "worker.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            return shared;
        }
        catch (IOException)
        {
            _privateWorkerDirectory = Path.Combine(_stateDirectory, $"worker-{Environment.ProcessId}");
            return _privateWorkerDirectory;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
