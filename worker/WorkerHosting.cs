using Farm.Contracts;
using Farm.Oci.Stores;
using Farm.Worker.Hosting;
using Farm.Worker.Jobs;
using Farm.Worker.Telemetry;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Farm.Worker;

/// <summary>Registers a worker in a host: its options and its consumer on the workers' queue.</summary>
public static class WorkerHosting
{
    /// <summary>The queue all workers compete on.</summary>
    public const string QueueName = "farm-build-layer";

    /// <summary>
    /// How long a stopping worker process may take in all: <see cref="WorkerOptions.StopGrace"/> must stay below it, and
    /// an orchestrator's grace period (Kubernetes' <c>terminationGracePeriodSeconds</c>) above StopGrace plus a margin.
    /// </summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Adds the worker's services whatever the transport: options, blob stores, the job executor and the start-up
    /// recovery. Call <see cref="AddFarmWorkerConsumers"/> inside the MassTransit setup, with RabbitMQ for a worker
    /// process or the in-memory transport for the embedded farm.
    /// </summary>
    public static IServiceCollection AddFarmWorker(this IServiceCollection services, Action<WorkerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.AddOptions<RegistryAccessOptions>().BindConfiguration(RegistryAccessOptions.Section);
        services.TryAddSingleton(sp => new BlobStoreLocator(sp.GetRequiredService<IOptions<RegistryAccessOptions>>().Value.ToClientOptions()));
        services.TryAddSingleton<RunningJobs>();
        services.TryAddSingleton(sp => Platforms.WorkerPlatforms.Detect(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.Platforms));
        services.TryAddSingleton(sp => new JobSlots(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.Slots));
        services.TryAddSingleton<WorkerReadiness>();
        services.TryAddSingleton(sp => new LayerJobExecutor(
            sp.GetRequiredService<IOptions<WorkerOptions>>().Value,
            sp.GetRequiredService<BlobStoreLocator>(),
            secrets: sp.GetService<RunMounts.IBuildSecretSource>(),
            cacheCoordinator: sp.GetService<RunMounts.ICacheMountCoordinator>(),
            logger: sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()?.CreateLogger("Farm.Worker.RunMounts.CacheMounts")));
        services.TryAddSingleton<ILayerJobExecutor>(sp => sp.GetRequiredService<LayerJobExecutor>());
        services.TryAddSingleton(sp =>
        {
            var telemetry = new WorkerTelemetry();
            telemetry.ObserveLayerStore(() => sp.GetRequiredService<LayerJobExecutor>().Layers.SizeBytes);
            telemetry.ObserveDownloads(() => sp.GetRequiredService<LayerJobExecutor>().BytesDownloaded);
            telemetry.ObserveSlots(sp.GetRequiredService<IOptions<WorkerOptions>>().Value.Slots);
            return telemetry;
        });
        services.AddHostedService<WorkerRecoveryService>();
        services.AddHostedService<WorkerHeartbeatService>();
        services.AddHostedService<CacheMountDrain>();
        return services;
    }

    /// <summary>
    /// The queue of one worker's own, where coordinators send the jobs whose parent layers it holds
    /// (docs/architecture.md, "A build, step by step", 6): <c>farm-build-layer.NAME</c>, the name reduced to the
    /// characters RabbitMQ and MassTransit accept in a queue name.
    /// </summary>
    public static string AffinityQueueName(string worker)
    {
        ArgumentException.ThrowIfNullOrEmpty(worker);
        var name = string.Concat(worker.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        return QueueName + "." + (name.Length > 200 ? name[..200] : name);
    }

    /// <summary>
    /// Adds the job consumer; its endpoint takes at most <see cref="WorkerOptions.Slots"/> jobs at once. With
    /// <paramref name="affinityQueue"/> (RabbitMQ workers), also the consumer of that queue of the worker's own; both
    /// share the worker's <see cref="JobSlots"/>.
    /// </summary>
    /// <remarks>
    /// Jobs of other platforms than linux/amd64 come from their platforms' queues, configured by
    /// <see cref="ConfigureFarmPlatformEndpoints"/>; a worker configured without linux/amd64
    /// (<paramref name="platforms"/>) takes nothing from the farm's queue.
    /// </remarks>
    public static void AddFarmWorkerConsumers(this IBusRegistrationConfigurator bus, int slots, string? affinityQueue = null, IReadOnlyList<string>? platforms = null)
    {
        ArgumentNullException.ThrowIfNull(bus);
        var consumer = bus.AddConsumer<BuildLayerConsumer>();
        if (platforms is null || platforms.Count == 0 || platforms.Any(p => Oci.Platform.TryParse(p)?.ToString() == FarmPlatforms.Default))
        {
            consumer.Endpoint(e =>
            {
                e.Name = QueueName;
                e.ConcurrentMessageLimit = slots;
                e.PrefetchCount = slots;
            });
        }
        else
        {
            consumer.ExcludeFromConfigureEndpoints();
        }

        bus.AddConsumer<PlatformJobConsumer>().ExcludeFromConfigureEndpoints();
        if (affinityQueue is not null)
        {
            bus.AddConsumer<AffinityJobConsumer>()
                .Endpoint(e =>
                {
                    e.Name = affinityQueue;
                    e.ConcurrentMessageLimit = slots;
                    e.PrefetchCount = slots;
                    // Only what is sent here: bound to BuildLayer's exchange, it would get a copy of every job.
                    e.ConfigureConsumeTopology = false;
                });
            // A job not taken within its affinity wait (AMQP expiration, set by the sender) goes to the farm's queue.
            bus.AddConfigureEndpointsCallback((_, name, endpoint) =>
            {
                if (name == affinityQueue && endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
                {
                    rabbit.SetQueueArgument("x-dead-letter-exchange", QueueName);
                    // A queue its worker left for good (names change with the process id) is removed a day later; its
                    // jobs expired to the farm's queue long before (Farm:Coordinator:AffinityWait is at most 10 min).
                    rabbit.QueueExpiration = AffinityQueueExpiry;
                }
            });
        }

        // Every worker hears every cancel: its own temporary queue, gone with it.
        bus.AddConsumer<CancelLayerJobConsumer>()
            .Endpoint(e =>
            {
                e.Name = "farm-worker-cancel";
                e.InstanceId = "-" + Guid.NewGuid().ToString("N")[..12];
                e.Temporary = true;
            });
    }

    /// <summary>
    /// Adds a receive endpoint per platform other than linux/amd64 that this worker runs (<see cref="Platforms.WorkerPlatforms"/>):
    /// its queue <see cref="FarmPlatforms.QueueName"/>, bound to nothing (coordinators send there, nobody publishes).
    /// On RabbitMQ a worker that runs the platform natively consumes with a higher priority than one that emulates it:
    /// the broker gives a job to a native worker with a free slot first, and to an emulating one only when none has.
    /// Call it in the transport's configuration, beside <c>ConfigureEndpoints</c>; it adds nothing without a worker.
    /// </summary>
    public static void ConfigureFarmPlatformEndpoints(this IBusFactoryConfigurator cfg, IBusRegistrationContext context)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        ArgumentNullException.ThrowIfNull(context);
        if (context.GetService<Platforms.WorkerPlatforms>() is not { } platforms)
        {
            return;
        }

        var slots = context.GetRequiredService<IOptions<WorkerOptions>>().Value.Slots;
        foreach (var platform in platforms.All.Where(p => p.Name != FarmPlatforms.Default))
        {
            cfg.ReceiveEndpoint(FarmPlatforms.QueueName(platform.Name), e =>
            {
                e.ConfigureConsumeTopology = false;
                e.ConcurrentMessageLimit = slots;
                e.PrefetchCount = slots;
                if (e is IRabbitMqReceiveEndpointConfigurator rabbit)
                {
                    rabbit.ConsumerPriority = platform.Emulated ? EmulatedConsumerPriority : NativeConsumerPriority;
                }

                e.ConfigureConsumer<PlatformJobConsumer>(context);
            });
        }
    }

    /// <summary>RabbitMQ's <c>x-priority</c> of a worker consuming a platform's queue natively.</summary>
    public const int NativeConsumerPriority = 10;

    /// <summary>RabbitMQ's <c>x-priority</c> of a worker consuming a platform's queue through an emulator.</summary>
    public const int EmulatedConsumerPriority = 0;

    /// <summary>How long an affinity queue without a consumer lives on (RabbitMQ's <c>x-expires</c>).</summary>
    public static readonly TimeSpan AffinityQueueExpiry = TimeSpan.FromDays(1);

    /// <summary>Everything a stand-alone worker needs: options, executor, MassTransit over RabbitMQ.</summary>
    public static IServiceCollection AddFarmWorkerProcess(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        // First, so that it starts before the recovery (answering "not ready") and stops last: /readyz keeps saying
        // "draining" while the bus lets running jobs finish within StopGrace.
        services.AddHostedService<WorkerHealthEndpoint>();
        // Cache mounts are the farm's: a locked one is held across workers, snapshots go through the blob store.
        services.TryAddSingleton<RunMounts.ICacheMountCoordinator>(sp => new RunMounts.BusCacheMountCoordinator(sp.GetRequiredService<IBus>()));
        services.AddFarmWorker();
        services.AddFarmRabbitMqOptions(configuration);
        services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        services.AddFarmWorkerTelemetry(configuration);

        var worker = FarmSettings.Read<WorkerOptions>(configuration, WorkerOptions.Section);
        // Its heartbeats name the queue, so coordinators send it the jobs whose parents it holds.
        services.AddSingleton(new AffinityQueue(AffinityQueueName(worker.Name)));
        // SIGTERM: running jobs get StopGrace to finish, then their consume tokens fire and they are handed back.
        services.Configure<MassTransitHostOptions>(o => o.ConsumerStopTimeout = worker.StopGrace);
        services.AddMassTransit(x =>
        {
            x.AddFarmWorkerConsumers(worker.Slots, AffinityQueueName(worker.Name), worker.Platforms);
            x.UsingFarmRabbitMq();
        });
        return services;
    }
}
