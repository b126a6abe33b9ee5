using System.Net;
using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Cluster;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Telemetry;
using Farm.Oci.Net;
using Farm.Worker;
using Farm.Worker.Hosting;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Serialization;

namespace Farm.Coordinator.Hosting;

/// <summary>Registers a coordinator in a host: the Orleans silo with the layer grains and the MassTransit bus.</summary>
public static class CoordinatorHosting
{
    /// <summary>The grain storage provider of the layer grains.</summary>
    public const string LayerStorage = "farm-layers";

    /// <summary>The grain storage provider of the build grains.</summary>
    public const string BuildStorage = "farm-builds";

    /// <summary>
    /// Adds the silo (localhost clustering and memory storage, or Redis for both when <see cref="CoordinatorOptions.Redis"/>
    /// is set), the results and log consumers, and the bus over RabbitMQ or in memory per
    /// <see cref="CoordinatorOptions.Transport"/>. <paramref name="configureBus"/> adds more consumers to the same
    /// bus: the embedded farm adds the worker's there (<c>AddFarmWorkerConsumers</c>).
    /// </summary>
    /// <exception cref="InvalidSettingsException">The <c>Farm:Coordinator</c> settings are invalid.</exception>
    /// <exception cref="AuthSettingsException">The tokens file is unusable (FARM4232).</exception>
    /// <exception cref="TenantRegistrySettingsException">A tenant's registry auth file is unusable (FARM4243).</exception>
    /// <exception cref="SiloAddressSettingsException">The silo's addresses cannot be used (FARM4260).</exception>
    public static IHostApplicationBuilder AddFarmCoordinator(
        this IHostApplicationBuilder builder,
        Action<CoordinatorOptions>? configure = null,
        Action<IBusRegistrationConfigurator>? configureBus = null)
    {
        ArgumentNullException.ThrowIfNull(builder);

        // The silo and the transport are chosen while the host is built, before options can be resolved: bind and
        // validate a copy now, and register the same binding for everything resolved later.
        var local = FarmSettings.Read<LocalFarmOptions>(builder.Configuration, LocalFarmOptions.Section);
        if (local.Enabled)
        {
            // The local farm: the same composition with the one-machine adapters, chosen here and nowhere else.
            configure = LocalAdapters(builder, local) + configure;
        }

        var options = FarmSettings.Read(builder.Configuration, CoordinatorOptions.Section, configure);
        if (!string.IsNullOrWhiteSpace(options.Redis))
        {
            // Refused here, before the host starts, like every other unusable setting.
            options.SiloEndpoints();
        }

        var registered = builder.Services.AddOptions<CoordinatorOptions>().BindConfiguration(CoordinatorOptions.Section);
        if (configure is not null)
        {
            registered.Configure(configure);
        }

        registered.ValidateDataAnnotations().ValidateOnStart();

        // Who may submit (HTTP tokens, AMQP users) and as which tenant; the local farm's socket needs no token.
        var auth = FarmSettings.Read<CoordinatorAuthOptions>(builder.Configuration, CoordinatorAuthOptions.Section);
        var tokens = local.Enabled ? FarmTokens.None : FarmTokens.Load(auth);
        builder.Services.TryAddSingleton(sp =>
        {
            tokens.Logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger<FarmTokens>();
            return tokens;
        });
        // With auth on, job results count only from the farm's own RabbitMQ users (LayerResultsConsumer).
        builder.Services.TryAddSingleton(sp => sp.GetRequiredService<FarmTokens>().Enabled && options.Transport == FarmTransport.RabbitMq
            ? JobResultSenders.Only(auth.WorkerAmqpUsers.Append(sp.GetRequiredService<IOptions<RabbitMqOptions>>().Value.User))
            : JobResultSenders.Anyone);
        if (!string.IsNullOrWhiteSpace(options.Redis))
        {
            // Before the silo starts: a Redis that refuses this coordinator stops it with one clear error.
            builder.Services.AddHostedService<RedisStartupCheck>();
        }

        // Each tenant's registry credentials (the local farm's builds are its owner's: the daemon's own credentials).
        builder.Services.TryAddSingleton(local.Enabled ? RegistryCredentials.None : RegistryCredentials.Load(builder.Configuration));
        builder.Services.AddSingleton<BuildLogHub>();
        // Cache affinity: which workers hold which layers, shared through Redis by a cluster's coordinators.
        builder.Services.TryAddSingleton<ILayerLocality>(_ => string.IsNullOrWhiteSpace(options.Redis) ? new MemoryLayerLocality() : new RedisLayerLocality(options));
        builder.Services.TryAddSingleton<JobDispatcher>();
        builder.Services.AddFarmBuildService();
        if (options.InProcessWorker)
        {
            // The worker runs beside the coordinator: it takes a build's secrets from the coordinator's memory directly.
            builder.Services.TryAddSingleton<Worker.RunMounts.IBuildSecretSource>(sp => new Worker.RunMounts.InProcessBuildSecrets(sp.GetRequiredService<BuildSecrets>().Values));
            builder.Services.AddFarmWorker();
            var worker = FarmSettings.Read<WorkerOptions>(builder.Configuration, WorkerOptions.Section);
            configureBus += bus => bus.AddFarmWorkerConsumers(worker.Slots, platforms: worker.Platforms);
        }
        builder.Services.AddFarmCoordinatorMonitoring();
        builder.UseOrleans(silo => silo.AddFarmCoordinatorSilo(options));

        if (options.Transport == FarmTransport.RabbitMq)
        {
            builder.Services.AddFarmRabbitMqOptions(builder.Configuration);
        }

        // A coordinator whose bus cannot start must not report healthy: start-up waits for the bus and fails with it.
        builder.Services.Configure<MassTransitHostOptions>(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromSeconds(60);
            o.StopTimeout = TimeSpan.FromSeconds(30);
        });
        builder.Services.AddMassTransit(x =>
        {
            x.AddFarmCoordinatorConsumers();
            configureBus?.Invoke(x);
            if (options.Transport == FarmTransport.RabbitMq)
            {
                x.UsingFarmRabbitMq();
            }
            else
            {
                x.UsingInMemory((context, cfg) =>
                {
                    cfg.ConfigureEndpoints(context);
                    cfg.ConfigureFarmPlatformEndpoints(context);
                });
            }
        });
        return builder;
    }

    /// <summary>
    /// The local farm's adapters: in-memory bus, localhost silo on free ports with memory storage, a worker in this
    /// process, the file action cache and the local image store under <see cref="LocalFarmOptions.StateDirectory"/>
    /// (its OCI layout is the blob store: local images' layers are parents without copying, built images are named
    /// there without copying), build contexts read in place.
    /// </summary>
    private static Action<CoordinatorOptions> LocalAdapters(IHostApplicationBuilder builder, LocalFarmOptions local)
    {
        var state = Path.GetFullPath(local.StateDirectory);
        var slots = local.Slots > 0 ? local.Slots : Math.Max(1, Environment.ProcessorCount);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{WorkerOptions.Section}:{nameof(WorkerOptions.Name)}"] = "local",
            [$"{WorkerOptions.Section}:{nameof(WorkerOptions.StateDirectory)}"] = Path.Combine(state, "worker"),
            [$"{WorkerOptions.Section}:{nameof(WorkerOptions.Slots)}"] = slots.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // The local farm is its user's own machine, as with docker build: no memory or time limit on a step (the
            // defaults protect a shared worker); the process limit stays, so a fork bomb fails its step, not the machine.
            [$"{WorkerOptions.Section}:StepLimits:Memory"] = "0",
            [$"{WorkerOptions.Section}:StepLimits:MaxMemory"] = "0",
            [$"{WorkerOptions.Section}:StepLimits:Timeout"] = "00:00:00",
            [$"{WorkerOptions.Section}:StepLimits:MaxTimeout"] = "00:00:00",
            // ... and ADD fetches from wherever its user can (ADD http://localhost:8000/file, as docker build does).
            [$"{WorkerOptions.Section}:Sandbox:FenceFetches"] = "false",
            [$"{BuildServiceOptions.Section}:{nameof(BuildServiceOptions.CacheStore)}"] = "oci-layout:" + Path.Combine(state, "images"),
            [$"{BuildServiceOptions.Section}:{nameof(BuildServiceOptions.StateDirectory)}"] = state,
            [$"{BuildServiceOptions.Section}:{nameof(BuildServiceOptions.LocalClient)}"] = "true",
            // The local farm is its user's own: a build of theirs may share the machine's network when it asks (--allow).
            [$"{BuildServiceOptions.Section}:{nameof(BuildServiceOptions.Entitlements)}:0"] = Entitlements.NetworkHost,
            // The daemon's log (farmd.log) is for its user: what Farm did, and what went wrong below it.
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Farm"] = "Information",
        });
        builder.Services.AddSingleton(_ => new LocalImages(state));
        var privileged = Environment.IsPrivilegedProcess;
        if (!privileged)
        {
            builder.Services.AddSingleton<ILayerBuilds, RootlessLayerBuilds>();
        }

        return o =>
        {
            o.Transport = FarmTransport.InMemory;
            o.Redis = null;
            // One worker: there is no other to prefer.
            o.AffinityWait = TimeSpan.Zero;
            o.InProcessWorker = privileged;
            o.SiloPort = FreePorts.Tcp();
            o.GatewayPort = FreePorts.Tcp();
            o.ClusterId = $"farm-local-{Environment.ProcessId}";
            o.ServiceId = "farm-local";
        };
    }

    /// <summary>The coordinator's consumers: job results to the layer grains, log lines to the <see cref="BuildLogHub"/>, submitted builds to the <see cref="BuildService"/>.</summary>
    public static void AddFarmCoordinatorConsumers(this IBusRegistrationConfigurator bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        // A grain call fails while a silo joins or leaves; a result must still arrive, so retry before faulting.
        bus.AddConsumer<LayerResultsConsumer>(c => c.UseMessageRetry(r => r.Exponential(8, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500))))
            .Endpoint(e => e.Name = LayerResultsConsumer.QueueName);
        // Workers wait on these answers before a step with a cache mount runs: a few quick retries, then their own.
        bus.AddConsumer<CacheMountConsumer>(c => c.UseMessageRetry(r => r.Exponential(4, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(500))))
            .Endpoint(e => e.Name = CacheMountConsumer.QueueName);
        bus.AddConsumer<StepLogConsumer>()
            .Endpoint(e =>
            {
                e.Name = "farm-coordinator-logs";
                e.InstanceId = "-" + Guid.NewGuid().ToString("N")[..12];
                e.Temporary = true;
            });
        bus.AddConsumer<SubmitBuildConsumer>().Endpoint(e => e.Name = SubmitBuildConsumer.QueueName);
        bus.AddFarmMonitoringConsumers();
    }

    /// <summary>The silo: clustering, the layer grains' storage, serialization of contract types and call timeouts.</summary>
    public static ISiloBuilder AddFarmCoordinatorSilo(this ISiloBuilder silo, CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Redis))
        {
            silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, primarySiloEndpoint: null, options.ServiceId, options.ClusterId);
            silo.AddMemoryGrainStorage(LayerStorage);
            silo.AddMemoryGrainStorage(BuildStorage);
            silo.UseInMemoryReminderService();
        }
        else
        {
            // Parsed here once so that a CA file that cannot be used stops the start (FARM3030) before anything runs.
            _ = FarmRedis.Configuration(options);
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ServiceId;
            });
            // Listen where configured, advertise the address the other coordinators reach (docs/configuration.md).
            var (listen, advertised) = options.SiloEndpoints();
            silo.Configure<EndpointOptions>(o =>
            {
                o.AdvertisedIPAddress = advertised;
                o.SiloPort = options.SiloPort;
                o.GatewayPort = options.GatewayPort;
                o.SiloListeningEndpoint = new IPEndPoint(listen, options.SiloPort);
                o.GatewayListeningEndpoint = new IPEndPoint(listen, options.GatewayPort);
            });

            // How soon a silo that stopped answering (killed, its machine gone) is declared dead, and its builds taken over.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = options.ProbeTimeout;
                o.NumMissedProbesLimit = options.MissedProbesLimit;
            });
            silo.UseRedisClustering(o => o.ConfigurationOptions = FarmRedis.Configuration(options));
            silo.AddRedisGrainStorage(LayerStorage, o => o.ConfigurationOptions = FarmRedis.Configuration(options));
            // Builds: state and the reminder that resumes a build on another silo when its silo stops.
            silo.AddRedisGrainStorage(BuildStorage, o => o.ConfigurationOptions = FarmRedis.Configuration(options));
            silo.UseRedisReminderService(o => o.ConfigurationOptions = FarmRedis.Configuration(options));
            silo.Services.AddFarmClusterRecovery();
        }

        // A step's span reaches the layer grain, and through it the BuildLayer message (Farm.Telemetry listens).
        silo.AddActivityPropagation();
        silo.Configure<ReminderOptions>(o => o.MinimumReminderPeriod = TimeSpan.FromTicks(Math.Min(o.MinimumReminderPeriod.Ticks, options.ResumeCheckPeriod.Ticks)));

        // Contract records (LayerStep, LayerRef) cross grain calls as the JSON they are on the wire (see LayerJobRequest).
        var contracts = typeof(BuildLayer).Namespace;
        silo.Services.AddSerializer(s => s.AddJsonSerializer(isSupported: t => t.Namespace == contracts));

        // A caller of BuildAsync waits for the whole job: Orleans' default 30 s call timeout would cut it short.
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = options.JobTimeout + TimeSpan.FromMinutes(1));
        return silo;
    }
}
