using Farm.Contracts;
using Farm.Worker.Jobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Hosting;

/// <summary>
/// Before the worker takes jobs, removes what a previous process with the same state directory left when it
/// died mid-job: containers still running in its runc root, mounted snapshots, scratch files. Those jobs were
/// never acknowledged, so RabbitMQ has already handed them to another worker.
/// </summary>
/// <remarks>
/// It also installs the firewall of the RUN steps' private networks (refusing this machine's addresses, the bus's host
/// and the configured networks), so a worker that cannot fence its steps fails at start with FARM3109, not at a step.
/// </remarks>
public sealed partial class WorkerRecoveryService(LayerJobExecutor executor, IOptions<WorkerOptions> options, IOptions<RabbitMqOptions> rabbit, WorkerReadiness readiness, ILogger<WorkerRecoveryService> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        LogStepLimits(logger, options.Value.StepLimits);
        var removed = await executor.RecoverAsync(cancellationToken).ConfigureAwait(false);
        if (removed > 0)
        {
            LogRecovered(logger, removed);
        }

        if (executor.Firewall is { } firewall)
        {
            await firewall.InstallAsync(cancellationToken).ConfigureAwait(false);
            if (rabbit.Value.Host is { Length: > 0 } bus)
            {
                await firewall.DenyHostAsync(bus, cancellationToken).ConfigureAwait(false);
            }

            var denied = string.Join(", ", firewall.DeniedNetworks.Select(n => n.ToString()).DefaultIfEmpty("no other network"));
            LogFirewall(logger, firewall.Chain, firewall.Group, denied);
        }
        else
        {
            LogNoFirewall(logger);
        }

        readiness.MarkRecovered();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed {Count} containers and snapshots left by a previous worker process")]
    private static partial void LogRecovered(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "RUN steps' private networks are fenced by iptables chain {Chain} (slirp4netns as group {Group}): this machine's addresses and {Denied} refused")]
    private static partial void LogFirewall(ILogger logger, string chain, int group, string denied);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Farm:Worker:Sandbox:Firewall is false: RUN steps can reach this machine's non-loopback addresses and the farm's services")]
    private static partial void LogNoFirewall(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "RUN steps get by default: {StepLimits}")]
    private static partial void LogStepLimits(ILogger logger, StepLimitsOptions stepLimits);
}
