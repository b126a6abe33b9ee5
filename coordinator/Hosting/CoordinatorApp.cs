using Farm.Coordinator.Api;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Cluster;
using Farm.Coordinator.Telemetry;
using Farm.Worker.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// The coordinator process, composed once: the silo and the bus (<see cref="CoordinatorHosting.AddFarmCoordinator"/>),
/// the build API, health, telemetry and the dashboard, on TCP (a cluster's coordinator) or on the local farm's unix
/// socket. Every host (the coordinator process, the local farm daemon) and the end-to-end fixtures call these two.
/// </summary>
public static class CoordinatorApp
{
    /// <exception cref="InvalidSettingsException">The settings are invalid.</exception>
    /// <exception cref="AuthSettingsException">The listener's auth or TLS settings are unusable or unsafe (FARM4232).</exception>
    public static WebApplicationBuilder AddFarmCoordinatorApp(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddFarmCoordinator();
        var local = FarmSettings.Read<LocalFarmOptions>(builder.Configuration, LocalFarmOptions.Section);
        if (local.Enabled)
        {
            builder.Services.AddOptions<LocalFarmOptions>().BindConfiguration(LocalFarmOptions.Section).ValidateDataAnnotations().ValidateOnStart();
            var daemon = LocalFarmDaemon.Claim(local);
            builder.Services.AddSingleton(daemon);
            builder.Services.AddHostedService(sp => sp.GetRequiredService<LocalFarmDaemon>());
            builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(local.SocketPath));
            // The socket is its owner's (mode 0600, or a granted group): the file system authenticates, no token.
            builder.Services.AddFarmAuthorization(enabled: false);
        }
        else
        {
            builder.AddFarmCoordinatorListener();
        }

        // Beside MassTransit's bus check: Redis, the membership table and this silo's place in the cluster.
        builder.Services.AddHealthChecks().AddCheck<ClusterHealthCheck>("cluster").AddFarmCoordinatorProbes();
        builder.Services.AddFarmBuildApi();
        builder.Services.AddFarmCoordinatorTelemetry(builder.Configuration);
        return builder;
    }

    public static WebApplication MapFarmCoordinator(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.Services.GetService<LocalFarmDaemon>() is { } daemon)
        {
            daemon.Attach(app.Lifetime, app.Services.GetRequiredService<BuildService>(), app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Farm.Local"));
            app.Use(async (context, next) =>
            {
                using (daemon.Request())
                {
                    await next(context).ConfigureAwait(false);
                }
            });
            app.MapGet("/version", () => Results.Json(daemon.Describe(), BuildApi.Json));
            app.MapPost("/daemon/stop", () =>
            {
                daemon.Stop();
                return Results.Accepted();
            });
        }

        // Kestrel starts after the silo and the bus (hosted services start in registration order, and the bus waits
        // until it is connected): /healthz (and /readyz) answering means grains can be called and jobs published.
        // MassTransit's own bus health check reports a lost RabbitMQ connection afterwards.
        app.UseFarmApiErrors();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapFarmCoordinatorProbes();
        app.MapFarmBuildApi();
        app.MapFarmJobSecretsApi();
        app.MapFarmTelemetry();
        app.MapFarmStoreApi();
        app.MapFarmSystemApi();
        return app;
    }
}
