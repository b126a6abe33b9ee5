using Farm.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Farm.Worker.Telemetry;

/// <summary>
/// OpenTelemetry for a worker process: the shared <see cref="FarmTelemetry"/> wiring (OTLP when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set) plus Prometheus' <c>/metrics</c> on <see cref="WorkerOptions.MetricsPort"/>
/// (an HttpListener: a worker has no web server of its own).
/// </summary>
public static class WorkerTelemetryHosting
{
    public static IServiceCollection AddFarmWorkerTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(WorkerOptions.Section);
        var defaults = new WorkerOptions();
        var name = section[nameof(WorkerOptions.Name)] is { Length: > 0 } n ? n : defaults.Name;
        var port = section.GetValue(nameof(WorkerOptions.MetricsPort), defaults.MetricsPort);
        var address = section[nameof(WorkerOptions.MetricsAddress)] is { Length: > 0 } a ? a : defaults.MetricsAddress;
        services.AddFarmTelemetry(configuration, "farm-worker", name, metrics: m =>
        {
            if (port > 0)
            {
                m.AddPrometheusHttpListener(o =>
                {
                    o.Host = address;
                    o.Port = port;
                });
            }
        });
        return services;
    }
}
