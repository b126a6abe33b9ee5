using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Hosting;
using Farm.Coordinator.Workers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator.Telemetry;

/// <summary>
/// One point of the dashboard's charts. Cache hits and misses count since the coordinator started (the chart takes
/// differences); the queue depth (ready: waiting, unacked: taken and unfinished) is null when unknown (in-memory bus,
/// management API down).
/// </summary>
public sealed record MonitorSample(
    DateTimeOffset At,
    long CacheHits,
    long CacheMisses,
    long? QueueReady,
    long? QueueUnacked,
    int Workers,
    int BusySlots,
    int FreeSlots,
    int RunningBuilds);

/// <summary>
/// Every <see cref="TelemetryOptions.SampleInterval"/>: reads the depth of the workers' queue from RabbitMQ's management
/// API (MassTransit does not expose it) for the <c>farm.queue.depth</c> gauge, and keeps a sample of cache, queue,
/// worker and build counts for the dashboard's charts. Failing to read the queue is logged once per outage and leaves
/// the depth unknown; it never stops the coordinator.
/// </summary>
public sealed partial class FarmMonitor : BackgroundService
{
    private readonly WorkerRegistry _workers;
    private readonly BuildRegistry _builds;
    private readonly TelemetryOptions _options;
    private readonly RabbitMqOptions? _rabbit;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Meter _meter = new(CoordinatorTelemetry.Name);
    private readonly HttpClient? _management;
    private readonly Lock _lock = new();
    private readonly Queue<MonitorSample> _samples = new();
    private (long Ready, long Unacked)? _depth;
    private bool _depthFailing;

    public FarmMonitor(
        WorkerRegistry workers,
        BuildRegistry builds,
        IOptions<TelemetryOptions> options,
        IOptions<CoordinatorOptions> coordinator,
        IServiceProvider services,
        ILogger<FarmMonitor> logger,
        TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(coordinator);
        ArgumentNullException.ThrowIfNull(services);
        _workers = workers;
        _builds = builds;
        _options = options.Value;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        if (coordinator.Value.Transport == FarmTransport.RabbitMq)
        {
            _rabbit = services.GetService<IOptions<RabbitMqOptions>>()?.Value;
        }

        if (_rabbit is not null)
        {
            var baseUrl = string.IsNullOrWhiteSpace(_options.RabbitMqManagementUrl) ? $"http://{_rabbit.Host}:15672/" : _options.RabbitMqManagementUrl.TrimEnd('/') + "/";
            _management = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(5) };
            _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
                "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_rabbit.User}:{_rabbit.Password}")));
        }

        _meter.CreateObservableGauge(
            "farm.queue.depth",
            () => _depth is { } d
                ? new[]
                {
                    new Measurement<long>(d.Ready, new("queue", QueueName), new("state", "ready")),
                    new Measurement<long>(d.Unacked, new("queue", QueueName), new("state", "unacked")),
                }
                : [],
            "{job}",
            "Jobs in the workers' queue: waiting (ready) and taken but unfinished (unacked).");
        _meter.CreateObservableGauge("farm.builds.running", () => RunningBuilds(), "{build}", "Builds queued or running in this coordinator.");
    }

    /// <summary>The workers' queue (WorkerHosting.QueueName; the coordinator does not reference the worker).</summary>
    public const string QueueName = "farm-build-layer";

    /// <summary>The samples kept, oldest first.</summary>
    public IReadOnlyList<MonitorSample> Samples
    {
        get
        {
            lock (_lock)
            {
                return [.. _samples];
            }
        }
    }

    /// <summary>A sample of now, without keeping it.</summary>
    public MonitorSample Now()
    {
        var workers = _workers.All;
        var depth = _depth;
        return new MonitorSample(
            _time.GetUtcNow(),
            CoordinatorTelemetry.Hits,
            CoordinatorTelemetry.Misses,
            depth?.Ready,
            depth?.Unacked,
            workers.Count,
            workers.Sum(w => w.BusySlots),
            workers.Sum(w => w.FreeSlots),
            RunningBuilds());
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.SampleInterval, _time);
        do
        {
            await ReadQueueDepthAsync(stoppingToken).ConfigureAwait(false);
            var sample = Now();
            lock (_lock)
            {
                _samples.Enqueue(sample);
                while (_samples.Count > _options.HistorySamples)
                {
                    _samples.Dequeue();
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private int RunningBuilds() => _builds.All.Count(b => !b.IsDone);

    private async Task ReadQueueDepthAsync(CancellationToken cancellationToken)
    {
        if (_management is null || _rabbit is null)
        {
            return;
        }

        try
        {
            using var response = await _management.GetAsync($"api/queues/{Uri.EscapeDataString(_rabbit.VirtualHost)}/{QueueName}", cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                // No worker declared the queue yet: nothing waits.
                _depth = (0, 0);
            }
            else
            {
                response.EnsureSuccessStatusCode();
                var queue = await response.Content.ReadFromJsonAsync<JsonObject>(cancellationToken).ConfigureAwait(false);
                _depth = ((long?)queue?["messages_ready"] ?? 0, (long?)queue?["messages_unacknowledged"] ?? 0);
            }

            _depthFailing = false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !cancellationToken.IsCancellationRequested)
        {
            _depth = null;
            if (!_depthFailing)
            {
                _depthFailing = true;
                LogQueueDepthUnavailable(_logger, e, _management.BaseAddress!);
            }
        }
    }

    public override void Dispose()
    {
        _management?.Dispose();
        _meter.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The workers' queue depth cannot be read from RabbitMQ's management API at {Url}; farm.queue.depth is unknown until it answers")]
    private static partial void LogQueueDepthUnavailable(ILogger logger, Exception exception, Uri url);
}
