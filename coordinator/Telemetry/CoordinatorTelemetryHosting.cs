using Farm.Coordinator.Dashboard;
using Farm.Coordinator.Workers;
using Farm.Telemetry;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Farm.Coordinator.Telemetry;

/// <summary>
/// Registers the coordinator's monitoring: the worker registry and its heartbeat consumer, the queue-depth and history
/// sampler (any host, the embedded farm too), and for the coordinator process OpenTelemetry with Prometheus'
/// <c>/metrics</c> and the dashboard.
/// </summary>
public static class CoordinatorTelemetryHosting
{
    /// <summary>Options (<c>Farm:Telemetry</c>), the <see cref="WorkerRegistry"/> and the <see cref="FarmMonitor"/>.</summary>
    public static IServiceCollection AddFarmCoordinatorMonitoring(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<WorkerRegistry>();
        services.TryAddSingleton<FarmMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<FarmMonitor>());
        return services;
    }

    /// <summary>The heartbeat consumer, on a temporary queue of this coordinator's own.</summary>
    public static void AddFarmMonitoringConsumers(this IBusRegistrationConfigurator bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.AddConsumer<WorkerHeartbeatConsumer>()
            .Endpoint(e =>
            {
                e.Name = WorkerHeartbeatConsumer.QueueName;
                e.InstanceId = "-" + Guid.NewGuid().ToString("N")[..12];
                e.Temporary = true;
            });
    }

    /// <summary>
    /// OpenTelemetry for the coordinator process: the shared wiring (OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is
    /// set), incoming HTTP requests (their <c>traceparent</c> parents a submitted build) and the Prometheus exporter.
    /// </summary>
    public static IServiceCollection AddFarmCoordinatorTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddFarmTelemetry(
            configuration,
            "farm-coordinator",
            tracing: t => t.AddAspNetCoreInstrumentation(o => o.Filter = Traced),
            metrics: m => m.AddPrometheusExporter());
        return services;
    }

    /// <summary>Maps <c>/metrics</c> and the dashboard (<c>/</c>, <c>/dashboard/*</c>, <c>/api/*</c>).</summary>
    public static WebApplication MapFarmTelemetry(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPrometheusScrapingEndpoint();
        app.MapFarmDashboard();
        return app;
    }

    /// <summary>Only requests that start or follow builds are traced, not the dashboard's polling or scrapes.</summary>
    private static bool Traced(HttpContext context) =>
        context.Request.Path.StartsWithSegments("/builds", StringComparison.Ordinal);
}
