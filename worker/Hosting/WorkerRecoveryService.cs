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
public sealed partial class WorkerRecoveryService(LayerJobExecutor executor, IOptions<WorkerOptions> options, ILogger<WorkerRecoveryService> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        LogStepLimits(logger, options.Value.StepLimits);
        var removed = await executor.RecoverAsync(cancellationToken).ConfigureAwait(false);
        if (removed > 0)
        {
            LogRecovered(logger, removed);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed {Count} containers and snapshots left by a previous worker process")]
    private static partial void LogRecovered(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "RUN steps get by default: {StepLimits}")]
    private static partial void LogStepLimits(ILogger logger, StepLimitsOptions stepLimits);
}
