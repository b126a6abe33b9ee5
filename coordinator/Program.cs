using Farm.Coordinator.Api;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator;

/// <summary>
/// The coordinator process: an Orleans silo with the layer grains, MassTransit over RabbitMQ, and HTTP on loopback
/// (<c>GET /healthz</c>, <c>/metrics</c>, the dashboard at <c>/</c>, and the build API: <c>POST /builds</c>, <c>GET /builds/{id}</c>, <c>/events</c>, <c>/logs</c>). Settings come from appsettings.json, environment variables (<c>Farm__Coordinator__Redis</c>,
/// <c>FARM_RABBITMQ</c>) and arguments (<c>--Farm:Coordinator:HttpPort=8480</c>).
/// </summary>
public static partial class CoordinatorProgram
{
    public static async Task<int> Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddFarmCoordinator();
        var port = builder.Configuration.GetSection(CoordinatorOptions.Section).GetValue(nameof(CoordinatorOptions.HttpPort), new CoordinatorOptions().HttpPort);
        // Loopback only: the endpoints carry no authentication yet.
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddHealthChecks();
        builder.Services.AddFarmBuildApi();
        builder.Services.AddFarmCoordinatorTelemetry(builder.Configuration);

        await using var app = builder.Build();
        // Kestrel starts after the silo and the bus (hosted services start in registration order, and the bus waits
        // until it is connected): /healthz answering means grains can be called and jobs published. MassTransit's
        // own bus health check reports a lost RabbitMQ connection afterwards.
        app.MapHealthChecks("/healthz");
        app.UseFarmApiErrors();
        app.MapFarmBuildApi();
        app.MapFarmTelemetry();
        app.MapFarmStoreApi();

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Farm.Coordinator");
        var options = app.Services.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
        LogStarting(logger, options, port);
        await app.RunAsync().ConfigureAwait(false);
        return 0;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Coordinator starting: {Options}; HTTP on 127.0.0.1:{Port}")]
    private static partial void LogStarting(ILogger logger, CoordinatorOptions options, int port);
}
