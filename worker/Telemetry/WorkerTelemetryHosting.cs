using Farm.Telemetry;
using Farm.Worker.Hosting;
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
        var worker = FarmSettings.Read<WorkerOptions>(configuration, WorkerOptions.Section);
        var (name, port, address) = (worker.Name, worker.MetricsPort, worker.MetricsAddress);
        services.AddFarmTelemetry(configuration, "farm-worker", name, metrics: m =>
        {
            if (port > 0)
            {
                m.AddPrometheusHttpListener(o =>
                {
                    o.Port = port;
                    if (address is "+" or "*")
                    {
                        // Every interface: HttpListener's wildcard, which the exporter's own URI of Host and Port
                        // cannot carry, so its prefix is replaced before the listener starts.
                        o.ConfigureHttpListener = (_, listener) =>
                        {
                            listener.Prefixes.Clear();
                            listener.Prefixes.Add($"http://{address}:{port}/");
                        };
                    }
                    else
                    {
                        o.Host = address;
                    }
                });
            }
        });
        return services;
    }
}
