using Farm.Worker.Jobs;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace Farm.Worker;

/// <summary>Registers a worker in a host: its options and its consumer on the workers' queue.</summary>
public static class WorkerHosting
{
    /// <summary>The queue all workers compete on.</summary>
    public const string QueueName = "farm-build-layer";

    /// <summary>Adds the worker's services; call <see cref="AddFarmWorkerConsumers"/> inside the MassTransit setup.</summary>
    public static IServiceCollection AddFarmWorker(this IServiceCollection services, Action<WorkerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return services;
    }

    /// <summary>Adds the job consumer; its endpoint takes at most <see cref="WorkerOptions.Slots"/> jobs at once.</summary>
    public static void AddFarmWorkerConsumers(this IBusRegistrationConfigurator bus, int slots)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.AddConsumer<BuildLayerConsumer>()
            .Endpoint(e =>
            {
                e.Name = QueueName;
                e.ConcurrentMessageLimit = slots;
                e.PrefetchCount = slots;
            });
    }
}
