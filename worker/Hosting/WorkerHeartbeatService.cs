using System.Reflection;
using Farm.Contracts;
using Farm.Worker.Jobs;
using Farm.Worker.Telemetry;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Hosting;

/// <summary>
/// Publishes a <see cref="WorkerHeartbeat"/> every <see cref="WorkerOptions.HeartbeatInterval"/> (slots, busy slots,
/// layer store size), and a last one marked <see cref="WorkerHeartbeat.Stopping"/> when the host starts stopping, so
/// the coordinators' worker registries show it gone at once instead of after missed heartbeats. That one goes out in
/// <see cref="StoppingAsync"/>, before any hosted service stops: the bus stops before this service otherwise (hosted
/// services stop in reverse order and the bus is registered after the worker). A heartbeat that cannot be published
/// (RabbitMQ restarting) is only logged: the next one follows.
/// </summary>
public sealed partial class WorkerHeartbeatService(
    IBus bus,
    IOptions<WorkerOptions> options,
    WorkerTelemetry telemetry,
    LayerJobExecutor executor,
    ILogger<WorkerHeartbeatService> logger,
    AffinityQueue? affinity = null,
    TimeProvider? time = null,
    Platforms.WorkerPlatforms? platforms = null) : BackgroundService, IHostedLifecycleService
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly SemaphoreSlim _publishing = new(1, 1);
    private bool _stopping;
    private readonly DateTimeOffset _startedAt = (time ?? TimeProvider.System).GetUtcNow();
    private static readonly string Version = typeof(WorkerHeartbeatService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, _time);
        do
        {
            await PublishAsync(stopping: false, stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        await PublishAsync(stopping: true, timeout.Token).ConfigureAwait(false);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>What this worker reports now.</summary>
    internal WorkerHeartbeat Heartbeat(bool stopping) => new()
    {
        Name = options.Value.Name,
        Slots = options.Value.Slots,
        BusySlots = telemetry.BusySlots,
        LayerStoreBytes = executor.Layers.SizeBytes,
        JobsDone = telemetry.JobsDone,
        Version = Version,
        Host = Environment.MachineName,
        MetricsPort = options.Value.MetricsPort,
        AffinityQueue = affinity?.Name,
        Platforms = [.. (platforms?.All ?? []).Select(p => p.Name)],
        EmulatedPlatforms = [.. (platforms?.All ?? []).Where(p => p.Emulated).Select(p => p.Name)],
        BytesDownloaded = executor.BytesDownloaded,
        StartedAt = _startedAt,
        SentAt = _time.GetUtcNow(),
        Stopping = stopping,
    };

    /// <summary>
    /// Publishes one heartbeat. Publishes are serialized and none follows the stopping one: a regular heartbeat arriving
    /// after it would list the worker again until it timed out.
    /// </summary>
    private async Task PublishAsync(bool stopping, CancellationToken cancellationToken)
    {
        try
        {
            await _publishing.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stopping)
        {
            return;
        }
        catch (OperationCanceledException e)
        {
            LogHeartbeatFailed(logger, e, options.Value.Name);
            return;
        }

        try
        {
            if (_stopping)
            {
                return;
            }

            _stopping = stopping;
            await bus.Publish(Heartbeat(stopping), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested && !stopping))
        {
            LogHeartbeatFailed(logger, e, options.Value.Name);
        }
        finally
        {
            _publishing.Release();
        }
    }

    public override void Dispose()
    {
        _publishing.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Worker {Name} could not publish its heartbeat")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception exception, string name);
}
