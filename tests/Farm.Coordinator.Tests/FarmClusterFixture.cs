using System.Collections.Concurrent;
using System.Net.Sockets;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Workers;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The farm as a cluster runs it: coordinators (in the test process, so tests can stop one) on Redis (clustering,
/// build and layer grain state, reminders, the action cache) and on a RabbitMQ virtual host made for this run;
/// worker processes (<c>dotnet Farm.Worker.dll</c>, one slot each, runc); a busybox base image and the contexts in
/// the test registry. Every <see cref="BuildLayer"/> job a coordinator publishes is recorded, to count jobs.
/// Redis, RabbitMQ with its management plugin, the registry and runc must be there: infra/up.sh.
/// </summary>
public class FarmClusterFixture : IAsyncLifetime
{
    private readonly List<FarmCoordinator> _coordinators = [];
    private readonly ConcurrentBag<string> _podmanImages = [];
    private RabbitMqVirtualHost? _vhost;

    public LayerStoreFixture Store { get; } = new();

    public List<WorkerProcess> Workers { get; } = [];

    public SubmitContext Context { get; private set; } = null!;

    /// <summary>Every job any coordinator of this fixture published, in order.</summary>
    public ConcurrentQueue<BuildLayer> Jobs { get; } = new();

    /// <summary>The jobs a coordinator sent to a worker's affinity queue rather than the farm's queue: the queue by job id.</summary>
    public ConcurrentDictionary<Guid, string> SentToWorker { get; } = new();

    public string VirtualHost => (_vhost ?? throw new InvalidOperationException("The fixture is not initialised.")).Name;

    /// <summary>The coordinator started first that still runs.</summary>
    public FarmCoordinator Coordinator => _coordinators.FirstOrDefault(c => c.Running) ?? throw new InvalidOperationException("No coordinator runs.");

    /// <summary>Worker processes started by <see cref="InitializeAsync"/>.</summary>
    protected virtual int InitialWorkers => 2;

    /// <summary>Whether <see cref="InitializeAsync"/> starts a coordinator.</summary>
    protected virtual bool InitialCoordinator => true;

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        await EnsureRedisAsync();
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-e2e-");
        Context = await SubmitContext.CreateAsync(Store.StoreAddress, Store.BaseLayer);
        if (InitialCoordinator)
        {
            await StartCoordinatorAsync(NewClusterId());
        }

        for (var i = 0; i < InitialWorkers; i++)
        {
            StartWorker("worker-" + (char)('a' + i));
        }

        await WaitForWorkersAsync(InitialWorkers);
    }

    public static string NewClusterId() => "farm-test-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>A coordinator in cluster <paramref name="clusterId"/>; an unfinished build's reminder fires every <paramref name="resumeCheck"/>.</summary>
    public async Task<FarmCoordinator> StartCoordinatorAsync(string clusterId, TimeSpan? resumeCheck = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration[RabbitMqOptions.UrlVariable] = $"amqp://guest:guest@127.0.0.1:5672/{VirtualHost}";
        builder.AddFarmCoordinator(o =>
        {
            o.Transport = FarmTransport.RabbitMq;
            o.Redis = "127.0.0.1:6379";
            o.ClusterId = clusterId;
            o.ServiceId = clusterId;
            o.SiloPort = FreePorts.Tcp();
            o.GatewayPort = FreePorts.Tcp();
            o.JobTimeout = TimeSpan.FromMinutes(5);
            o.ResumeCheckPeriod = resumeCheck ?? TimeSpan.FromMinutes(1);
        });
        builder.Services.Configure<BuildServiceOptions>(o =>
        {
            o.CacheStore = Store.StoreAddress;
            o.StateDirectory = Path.Combine(Store.Root, "c" + _coordinators.Count);
            // Tests whose steps wait for the test on this machine's loopback build with RUN --network=host.
            o.Entitlements = [Entitlements.NetworkHost];
        });
        ConfigureCoordinator(builder);
        var log = new LogLines();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(log);
        builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        builder.Logging.AddFilter("MassTransit", LogLevel.Warning);
        builder.Logging.AddFilter("Farm", LogLevel.Information);
        var host = builder.Build();
        await host.StartAsync();
        var recorder = new JobRecorder(Jobs, sentTo: SentToWorker);
        host.Services.GetRequiredService<IBus>().ConnectPublishObserver(recorder);
        host.Services.GetRequiredService<IBus>().ConnectSendObserver(recorder);
        var coordinator = new FarmCoordinator(host, log);
        _coordinators.Add(coordinator);
        return coordinator;
    }

    /// <summary>More settings for each coordinator this fixture starts.</summary>
    protected virtual void ConfigureCoordinator(HostApplicationBuilder builder)
    {
    }

    /// <summary>More settings (environment variables) for each worker process this fixture starts.</summary>
    protected virtual IReadOnlyDictionary<string, string>? WorkerEnvironment => null;

    /// <summary>A worker process with an empty layer store of its own.</summary>
    public WorkerProcess StartWorker(string name)
    {
        var worker = WorkerProcess.Start(name, Path.Combine(Store.Root, "w" + name[^1]), VirtualHost, WorkerEnvironment);
        Workers.Add(worker);
        return worker;
    }

    /// <summary>Stops a worker process (SIGTERM) and removes what its jobs left.</summary>
    public async Task StopWorkerAsync(WorkerProcess worker)
    {
        ArgumentNullException.ThrowIfNull(worker);
        Workers.Remove(worker);
        await worker.DisposeAsync();
    }

    /// <summary>Waits until RabbitMQ counts <paramref name="count"/> consumers on the workers' queue: a job published before would go to fewer workers.</summary>
    public Task WaitForWorkersAsync(int count) =>
        Wait.UntilAsync(async () => await _vhost!.ConsumersAsync(WorkerHosting.QueueName) == count, TimeSpan.FromSeconds(60),
            () => $"{count} workers to consume from {WorkerHosting.QueueName}" + Diagnostics());

    /// <summary>
    /// Uploads a context of <paramref name="files"/> and makes the submission (BASE is the busybox image), pushed to
    /// <paramref name="tags"/> when there are any.
    /// </summary>
    public async Task<SubmitBuild> SubmissionAsync(string dockerfile, IReadOnlyDictionary<string, string> files, IReadOnlyList<string> tags, IReadOnlyDictionary<string, string>? buildArgs = null, IReadOnlyList<string>? entitlements = null)
    {
        var (context, index) = await Context.UploadAsync(files);
        var args = new Dictionary<string, string> { ["BASE"] = Context.BaseImage };
        foreach (var (name, value) in buildArgs ?? new Dictionary<string, string>())
        {
            args[name] = value;
        }

        return new SubmitBuild
        {
            BuildId = Guid.NewGuid(),
            Dockerfile = dockerfile,
            ContextDigest = context,
            ContextIndexDigest = index,
            BuildArgs = args,
            Tags = tags,
            Push = tags.Count > 0,
            Entitlements = entitlements ?? [],
        };
    }

    /// <summary><c>podman run --rm --runtime runc</c> of a pushed image (removed from podman's store when the fixture ends); its output.</summary>
    public async Task<string> PodmanRunAsync(string reference, params string[] command)
    {
        _podmanImages.Add(reference);
        return await Tool.RunAsync("podman", ["run", "--rm", "--runtime", "runc", "--tls-verify=false", reference, .. command]);
    }

    /// <summary>The jobs published for <paramref name="buildId"/> (jobs another build's flight ran are not counted).</summary>
    public List<BuildLayer> JobsOf(Guid buildId) => [.. Jobs.Where(j => j.BuildId == buildId)];

    public string Diagnostics() =>
        string.Concat(_coordinators.Select((c, i) => $"{Environment.NewLine}--- coordinator {i} ({(c.Running ? "running" : "stopped")}):{Environment.NewLine}{c.Log.Tail()}"))
        + string.Concat(Workers.Select(w => $"{Environment.NewLine}--- {w.Name} ({(w.HasExited ? "exited" : "running")}):{Environment.NewLine}{w.OutputTail()}"));

    public async Task DisposeAsync()
    {
        foreach (var image in _podmanImages)
        {
            await PushTests.RemovePodmanImageAsync(image);
        }

        foreach (var coordinator in _coordinators)
        {
            await coordinator.DisposeAsync();
        }

        foreach (var worker in Workers)
        {
            await worker.DisposeAsync();
        }

        if (_vhost is not null)
        {
            await _vhost.DisposeAsync();
        }

        Context?.Dispose();
        await Store.DisposeAsync();
    }

    internal static async Task EnsureRedisAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", 6379).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is SocketException or TimeoutException)
        {
            throw new InvalidOperationException("Redis does not answer on 127.0.0.1:6379: start it with infra/up.sh (or infra/redis.sh start).", e);
        }
    }
}

/// <summary>A coordinator host of a <see cref="FarmClusterFixture"/>.</summary>
public sealed class FarmCoordinator(IHost host, LogLines log) : IAsyncDisposable
{
    private bool _disposed;

    public LogLines Log => log;

    public bool Running { get; private set; } = true;

    public BuildService Builds => host.Services.GetRequiredService<BuildService>();

    public IGrainFactory Grains => host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>The workers this coordinator heard from, as their heartbeats describe them.</summary>
    public IReadOnlyList<WorkerView> Workers => host.Services.GetRequiredService<WorkerRegistry>().All;

    /// <summary>This coordinator's silo.</summary>
    public SiloAddress Silo => host.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;

    /// <summary>Submits and waits until the build ends (its record here: this coordinator runs it).</summary>
    public async Task<BuildRecord> BuildAsync(SubmitBuild submit, Func<string> diagnostics)
    {
        var record = Builds.Submit(submit);
        await Wait.UntilAsync(() => record.IsDone, TimeSpan.FromMinutes(5), () => $"build {record.BuildId} to end; events so far: {Describe(record)}{diagnostics()}");
        return record;
    }

    /// <summary>The record's events, one line each, for failure messages.</summary>
    public static string Describe(BuildRecord record) =>
        string.Concat(record.Events.Where(e => e is not StepLog).Select(e => Environment.NewLine + BuildEventJson.Serialize(e)));

    /// <summary>Stops the host gracefully: the silo leaves the cluster, its builds stay running in their grains.</summary>
    public async Task StopAsync()
    {
        if (Running)
        {
            Running = false;
            await host.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await StopAsync();
        host.Dispose();
    }
}

/// <summary>The last lines a host logged, for failure messages.</summary>
public sealed class LogLines : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public string Tail(int count = 100) => string.Join(Environment.NewLine, _lines.TakeLast(count));

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        _lines.Enqueue(line);
        while (_lines.Count > 2000 && _lines.TryDequeue(out _))
        {
        }
    }

    private sealed class Logger(LogLines lines, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Add($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? string.Empty : " " + exception.GetType().Name + ": " + exception.Message)}");
    }
}

/// <summary>Cluster tests run one class at a time: they share the machine's two cores with runc jobs whose overlap they judge.</summary>
[CollectionDefinition(Name)]
public sealed class FarmClusterCollection
{
    public const string Name = "farm cluster";
}
