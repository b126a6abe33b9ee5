using System.Globalization;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Farm.Coordinator.Cluster;

/// <summary>
/// Watches the Redis this coordinator keeps its cluster state in, every <see cref="CoordinatorOptions.RedisCheckPeriod"/>:
/// whether it answers, and whether it still holds the marker this silo wrote there. A marker gone means Redis lost
/// its data (restarted without persistence, flushed, failed over to an empty replica): the monitor then rebuilds the
/// membership table (<see cref="RecoveringMembershipTable"/>) and persists every build running here again, with its
/// resume reminder (<see cref="BuildService.RestoreGrainsAsync"/>). Until that is done, and while Redis does not answer,
/// <see cref="ClusterHealth"/> reports the coordinator unhealthy.
/// </summary>
internal sealed partial class RedisLossMonitor(
    IOptions<CoordinatorOptions> options,
    ClusterHealth health,
    ILocalSiloDetails silo,
    IMembershipTable membership,
    BuildService builds,
    ILogger<RedisLossMonitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var coordinator = options.Value;
        var configuration = FarmRedis.Configuration(coordinator);
        configuration.AbortOnConnectFail = false;
        var redis = await ConnectionMultiplexer.ConnectAsync(configuration).ConfigureAwait(false);
        await using (redis.ConfigureAwait(false))
        {
            var db = redis.GetDatabase();
            var address = silo.SiloAddress.ToParsableString();
            var marker = new RedisKey($"farm:{coordinator.ServiceId}:{coordinator.ClusterId}:silo:{address}");
            // Longer than any pause between checks; a dead silo's marker expires by itself.
            var markerLife = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMinutes(10).Ticks, coordinator.RedisCheckPeriod.Ticks * 10));
            var marked = false;
            var unreachable = false;
            using var timer = new PeriodicTimer(coordinator.RedisCheckPeriod);
            do
            {
                try
                {
                    if (marked && !await db.KeyExistsAsync(marker).ConfigureAwait(false))
                    {
                        await RecoverAsync(address, stoppingToken).ConfigureAwait(false);
                    }

                    if (health.MembershipFaulted)
                    {
                        // Orleans touches the table every 30 s or so: read this silo's row now, so that /healthz
                        // turns healthy as soon as the table works again (or the read repairs a lost table).
                        await membership.ReadRowAsync(silo.SiloAddress, stoppingToken).ConfigureAwait(false);
                    }

                    await db.StringSetAsync(marker, DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture), markerLife).ConfigureAwait(false);
                    marked = true;
                    if (unreachable)
                    {
                        LogReachable(logger);
                        unreachable = false;
                    }

                    health.RedisAnswered();
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    health.RedisFailed(e.Message);
                    if (!unreachable)
                    {
                        LogUnreachable(logger, e);
                        unreachable = true;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A recovery step failed (a grain call while the cluster settles): the marker is still missing,
                    // so the next check tries again.
                    LogRecoveryFailed(logger, e);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
    }

    private async Task RecoverAsync(string address, CancellationToken cancellationToken)
    {
        health.Recovering("Redis lost its data; the membership table and the builds running here are being restored");
        LogDataLost(logger);
        if (membership is RecoveringMembershipTable table)
        {
            await table.RepairAsync(cancellationToken).ConfigureAwait(false);
        }

        var restored = await builds.RestoreGrainsAsync(address, cancellationToken).ConfigureAwait(false);
        LogRecovered(logger, restored);
        health.Recovered();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis does not answer; this coordinator reports unhealthy until it does")]
    private static partial void LogUnreachable(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis answers again")]
    private static partial void LogReachable(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis lost its data (this silo's marker is gone): restoring the membership table and the builds running here")]
    private static partial void LogDataLost(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Restored after Redis lost its data: membership table and {Builds} running builds")]
    private static partial void LogRecovered(ILogger logger, int builds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Restoring what Redis lost failed; trying again at the next check")]
    private static partial void LogRecoveryFailed(ILogger logger, Exception exception);
}
