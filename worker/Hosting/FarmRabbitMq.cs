using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Hosting;

/// <summary>
/// RabbitMQ as every farm process uses it: <see cref="RabbitMqOptions"/> from <c>Farm:RabbitMq</c> or
/// <c>FARM_RABBITMQ</c>, validated at start, and the bus on that host. The worker and the coordinator both call these.
/// </summary>
public static class FarmRabbitMq
{
    public static IServiceCollection AddFarmRabbitMqOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<RabbitMqOptions>()
            .BindConfiguration(RabbitMqOptions.Section)
            .PostConfigure(o =>
            {
                if (configuration[RabbitMqOptions.UrlVariable] is { Length: > 0 } url)
                {
                    o.ApplyUrl(url);
                }
            })
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return services;
    }

    /// <summary>The bus over RabbitMQ with the configured <see cref="RabbitMqOptions"/>; every consumer gets its endpoint.</summary>
    public static void UsingFarmRabbitMq(this IBusRegistrationConfigurator bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.UsingRabbitMq((context, cfg) =>
        {
            var rabbit = context.GetRequiredService<IOptions<RabbitMqOptions>>().Value;
            cfg.Host(rabbit.Host, (ushort)rabbit.Port, rabbit.VirtualHost, h =>
            {
                h.Username(rabbit.User);
                h.Password(rabbit.Password);
                if (rabbit.Heartbeat is { } heartbeat)
                {
                    h.Heartbeat(heartbeat);
                }
            });
            cfg.ConfigureEndpoints(context);
        });
    }
}
