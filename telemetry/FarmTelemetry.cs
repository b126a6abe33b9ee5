using System.Diagnostics;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Farm.Telemetry;

/// <summary>
/// The OpenTelemetry setup every Farm process shares (docs/architecture.md, "Telemetry"): the <c>Farm.*</c> ActivitySources and
/// Meters, MassTransit's spans (they carry the trace context over RabbitMQ) and Orleans' grain-call spans (they carry
/// it from a build's step into the layer grain that publishes the job). Traces and metrics go out over OTLP when the
/// standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (<c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>
/// and the other standard variables apply); each process adds its own <c>/metrics</c> exporter through the callbacks.
/// </summary>
public static class FarmTelemetry
{
    /// <summary>The ActivitySource and Meter of the <c>farm</c> command.</summary>
    public const string Cli = "Farm.Cli";

    /// <summary>The ActivitySource and Meter of the coordinator.</summary>
    public const string Coordinator = "Farm.Coordinator";

    /// <summary>The ActivitySource and Meter of a worker.</summary>
    public const string Worker = "Farm.Worker";

    /// <summary>The standard variable that switches OTLP export on.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Sources whose spans make up a build's trace besides Farm's own.</summary>
    public static IReadOnlyList<string> PropagatingSources { get; } = ["MassTransit", "Microsoft.Orleans.Application"];

    /// <summary>
    /// Adds tracing and metrics for the process <paramref name="serviceName"/> (<c>farm-coordinator</c>,
    /// <c>farm-worker</c>); <paramref name="instance"/> names this process among its peers (the worker's name).
    /// </summary>
    public static IOpenTelemetryBuilder AddFarmTelemetry(
        this IServiceCollection services,
        IConfiguration configuration,
        string serviceName,
        string? instance = null,
        Action<TracerProviderBuilder>? tracing = null,
        Action<MeterProviderBuilder>? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = services.AddOpenTelemetry()
            .ConfigureResource(r => Describe(r, serviceName, instance))
            .WithTracing(t =>
            {
                t.AddSource(Cli, Coordinator, Worker).AddSource([.. PropagatingSources]);
                tracing?.Invoke(t);
            })
            .WithMetrics(m =>
            {
                m.AddMeter(Cli, Coordinator, Worker);
                metrics?.Invoke(m);
            });
        if (!string.IsNullOrWhiteSpace(configuration[OtlpEndpointVariable]))
        {
            builder.UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>
    /// Tracing for a process without a host (the <c>farm</c> command): exports the <c>Farm.Cli</c> spans (and any
    /// <paramref name="sources"/>) over OTLP/HTTP protobuf to <paramref name="endpoint"/> (the collector's base
    /// address), or to the standard variables' endpoint when null. Returns null when no endpoint is known; dispose
    /// the provider to flush before the process exits.
    /// </summary>
    public static TracerProvider? StartTracing(string serviceName, Uri? endpoint = null, params string[] sources)
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(OtlpEndpointVariable);
        if (endpoint is null && string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return null;
        }

        var builder = Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(r => Describe(r, serviceName, null))
            .AddSource(Cli)
            .AddSource(sources);
        return (endpoint is null
                ? builder.AddOtlpExporter()
                : builder.AddOtlpExporter(o =>
                {
                    o.Protocol = OtlpExportProtocol.HttpProtobuf;
                    o.Endpoint = new Uri(endpoint, "v1/traces");
                    o.ExportProcessorType = ExportProcessorType.Simple;
                }))
            .Build();
    }

    /// <summary>The W3C <c>traceparent</c> of <paramref name="activity"/>, for a request or a message that starts work elsewhere.</summary>
    public static string? TraceParent(Activity? activity) => activity?.Id is { } id && activity.IdFormat == ActivityIdFormat.W3C ? id : null;

    private static void Describe(ResourceBuilder resource, string serviceName, string? instance)
    {
        var version = Assembly.GetEntryAssembly()?.GetName().Version?.ToString() ?? "0.0.0";
        resource.AddService(serviceName, serviceVersion: version, serviceInstanceId: instance ?? $"{Environment.MachineName}-{Environment.ProcessId}");
    }
}
