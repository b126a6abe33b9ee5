using Farm.Worker.Jobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Hosting;

/// <summary>
/// When the worker stops, lets the cache snapshots its finished steps are still publishing end first (at most
/// <see cref="WorkerOptions.StopGrace"/>), while the bus still runs: they release their <c>locked</c> leases with them,
/// so the next worker starts from what this one wrote instead of waiting for a lease to run out.
/// </summary>
public sealed partial class CacheMountDrain(LayerJobExecutor executor, IOptions<WorkerOptions> options, ILogger<CacheMountDrain> logger) : IHostedLifecycleService
{
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await executor.Caches.WhenPublishedAsync().WaitAsync(options.Value.StopGrace, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            LogUnfinished(logger, options.Value.StopGrace);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopping with cache snapshots still being published after {Grace}; their leases run out by themselves")]
    private static partial void LogUnfinished(ILogger logger, TimeSpan grace);
}
