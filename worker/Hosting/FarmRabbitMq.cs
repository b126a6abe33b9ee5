using System.Security.Authentication;
using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Hosting;

/// <summary>
/// RabbitMQ as every farm process uses it: <see cref="RabbitMqOptions"/> from <c>Farm:RabbitMq</c> or
/// <c>FARM_RABBITMQ</c> (and <c>FARM_RABBITMQ_CA</c>), validated at start, and the bus on that host, over TLS for
/// <c>amqps://</c>. The worker and the coordinator both call these.
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

                if (configuration[RabbitMqOptions.CaVariable] is { Length: > 0 } ca)
                {
                    o.CaPath = ca;
                }
            })
            .ValidateDataAnnotations()
            .ValidateOnStart();
        return services;
    }

    /// <summary>
    /// The bus over RabbitMQ with the configured <see cref="RabbitMqOptions"/>; every consumer gets its endpoint. Every
    /// message this process sends or publishes carries the AMQP <c>user_id</c> of its connection's user, which RabbitMQ
    /// checks: a coordinator with auth accepts job results only from the farm's own users (LayerResultsConsumer).
    /// </summary>
    /// <exception cref="ServiceCaUnreadableException">The CA file of an AMQPS connection cannot be used (FARM3030).</exception>
    public static void UsingFarmRabbitMq(this IBusRegistrationConfigurator bus)
    {
        ArgumentNullException.ThrowIfNull(bus);
        bus.UsingRabbitMq((context, cfg) =>
        {
            var rabbit = context.GetRequiredService<IOptions<RabbitMqOptions>>().Value;
            var validation = rabbit.UseTls ? rabbit.CertificateValidation() : null;
            cfg.Host(rabbit.Host, (ushort)rabbit.Port, rabbit.VirtualHost, h =>
            {
                h.Username(rabbit.User);
                h.Password(rabbit.Password);
                if (rabbit.UseTls)
                {
                    h.UseSsl(s =>
                    {
                        // The name the certificate must carry: the host this process was told to connect to.
                        s.ServerName = rabbit.Host;
                        s.Protocol = SslProtocols.Tls12 | SslProtocols.Tls13;
                        if (validation is not null)
                        {
                            s.CertificateValidationCallback = validation;
                        }
                    });
                }

                if (rabbit.Heartbeat is { } heartbeat)
                {
                    h.Heartbeat(heartbeat);
                }
            });

            var user = rabbit.User;
            cfg.ConfigureSend(s => s.UseSendExecute(c => c.TrySetUserId(user)));
            cfg.ConfigurePublish(p => p.UseExecute(c => c.TrySetUserId(user)));
            cfg.ConfigureEndpoints(context);
            cfg.ConfigureFarmPlatformEndpoints(context);
        });
    }

    /// <summary>Sets the AMQP <c>user_id</c> property; RabbitMQ refuses to route a message whose user_id is not its connection's user.</summary>
    private static void TrySetUserId(this SendContext context, string user)
    {
        if (context.TryGetPayload(out RabbitMqSendContext? amqp))
        {
            amqp.BasicProperties.UserId = user;
        }
    }
}
