using Farm.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// The one place a coordinator's Redis connection is configured (clustering, grain storage, reminders, the action
/// cache, the build event streams, the loss monitor): <see cref="CoordinatorOptions.Redis"/> as StackExchange.Redis
/// reads it (<c>user=</c>, <c>password=</c>, <c>ssl=</c>), plus <see cref="CoordinatorOptions.RedisCaPath"/> as the
/// only root Redis's certificate may chain to. The host name is checked whenever TLS is on.
/// </summary>
public static class FarmRedis
{
    /// <summary>A fresh <see cref="ConfigurationOptions"/> (each user of Redis gets its own: they are mutable).</summary>
    /// <exception cref="ServiceCaUnreadableException">The CA file cannot be used (FARM3030).</exception>
    public static ConfigurationOptions Configuration(CoordinatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Redis);
        var configuration = ConfigurationOptions.Parse(options.Redis);
        if (!string.IsNullOrWhiteSpace(options.RedisCaPath))
        {
            configuration.Ssl = true;
            configuration.CertificateValidation += ServiceCertificates.TrustOnly(
                ServiceCertificates.LoadCa(options.RedisCaPath, $"{CoordinatorOptions.Section}:{nameof(CoordinatorOptions.RedisCaPath)}"));
        }

        return configuration;
    }
}

/// <summary>
/// Connects to Redis once before anything else starts: a Redis that refuses this coordinator (a wrong user or
/// password, a certificate it does not trust) stops the start with FARM4251 instead of a silo that retries forever.
/// A Redis that does not answer yet is left to the usual retries: it may be starting beside the coordinator.
/// </summary>
internal sealed partial class RedisStartupCheck(IOptions<CoordinatorOptions> options, ILogger<RedisStartupCheck> logger) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var coordinator = options.Value;
        var configuration = FarmRedis.Configuration(coordinator);
        configuration.AbortOnConnectFail = true;
        configuration.ConnectRetry = 1;
        try
        {
            var redis = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken).ConfigureAwait(false);
            await using (redis.ConfigureAwait(false))
            {
                await redis.GetDatabase().PingAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RedisConnectionException e) when (e.FailureType == ConnectionFailureType.AuthenticationFailure)
        {
            throw new RedisConnectionFailedException(configuration, Redact(e.Message, configuration), e);
        }
        catch (RedisConnectionException e)
        {
            LogNotAnswering(logger, string.Join(", ", configuration.EndPoints), e.FailureType.ToString());
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>StackExchange.Redis does not print passwords; should a server's answer ever echo one, it goes no further.</summary>
    private static string Redact(string message, ConfigurationOptions configuration) =>
        string.IsNullOrEmpty(configuration.Password) ? message : message.Replace(configuration.Password, "***", StringComparison.Ordinal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis at {EndPoints} does not answer yet ({Failure}); the coordinator goes on retrying")]
    private static partial void LogNotAnswering(ILogger logger, string endPoints, string failure);
}

/// <summary>FARM4251: Redis refused the coordinator at start-up (user, password or TLS certificate); it does not start.</summary>
public sealed class RedisConnectionFailedException(ConfigurationOptions configuration, string reason, Exception? inner)
    : FarmException(
        FarmErrorCodes.RedisConnectionFailed,
        $"Redis at {string.Join(", ", configuration.EndPoints)}{(string.IsNullOrEmpty(configuration.User) ? string.Empty : " as user '" + configuration.User + "'")}{(configuration.Ssl ? " over TLS" : string.Empty)} refused this coordinator: {reason} Check user= and password= in Farm:Coordinator:Redis against Redis's ACL (the password is not shown here), and with TLS that the certificate is for that host and signed by the CA in Farm:Coordinator:RedisCaPath.",
        inner);
