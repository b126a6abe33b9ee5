using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Farm.Contracts;
using Farm.Coordinator.Telemetry;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator.Workers;

/// <summary>
/// A worker as the coordinator last heard of it (<see cref="WorkerHeartbeat"/>); <c>LastHeartbeat</c> is when this
/// coordinator received it, by its own clock, not the worker's.
/// </summary>
public sealed record WorkerView(
    string Name,
    int Slots,
    int BusySlots,
    long LayerStoreBytes,
    long JobsDone,
    string Version,
    string Host,
    int MetricsPort,
    DateTimeOffset StartedAt,
    DateTimeOffset LastHeartbeat,
    string? AffinityQueue = null,
    long BytesDownloaded = 0,
    IReadOnlyList<string>? Platforms = null,
    IReadOnlyList<string>? EmulatedPlatforms = null)
{
    public int FreeSlots => Math.Max(0, Slots - BusySlots);
}

/// <summary>
/// The workers that sent a <see cref="WorkerHeartbeat"/> within <see cref="TelemetryOptions.WorkerTimeout"/>: their
/// slots, load and last contact. A worker that stops reporting is forgotten after the timeout; one that says it is
/// stopping at once. Also the <c>farm.workers</c> and <c>farm.workers.slots</c> gauges.
/// </summary>
public sealed class WorkerRegistry : IDisposable
{
    private readonly ConcurrentDictionary<string, WorkerView> _workers = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private readonly Meter _meter = new(CoordinatorTelemetry.Name);

    public WorkerRegistry(IOptions<TelemetryOptions> options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _timeout = options.Value.WorkerTimeout;
        _time = time ?? TimeProvider.System;
        _meter.CreateObservableGauge("farm.workers", () => All.Count, "{worker}", "Workers that sent a heartbeat recently.");
        _meter.CreateObservableGauge(
            "farm.workers.slots",
            () =>
            {
                var workers = All;
                return new[]
                {
                    new Measurement<int>(workers.Sum(w => w.BusySlots), new KeyValuePair<string, object?>("state", "busy")),
                    new Measurement<int>(workers.Sum(w => w.FreeSlots), new KeyValuePair<string, object?>("state", "free")),
                };
            },
            "{slot}",
            "Job slots of the live workers, busy and free.");
    }

    /// <summary>The live workers by name, each heard from within the timeout; forgets the others.</summary>
    public IReadOnlyList<WorkerView> All
    {
        get
        {
            var oldest = _time.GetUtcNow() - _timeout;
            foreach (var (name, worker) in _workers)
            {
                if (worker.LastHeartbeat < oldest)
                {
                    _workers.TryRemove(new KeyValuePair<string, WorkerView>(name, worker));
                }
            }

            return [.. _workers.Values.OrderBy(w => w.Name, StringComparer.Ordinal)];
        }
    }

    /// <summary>Records a heartbeat; a stopping worker is removed.</summary>
    public void Record(WorkerHeartbeat heartbeat)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        if (heartbeat.Stopping)
        {
            _workers.TryRemove(heartbeat.Name, out _);
            return;
        }

        _workers[heartbeat.Name] = new WorkerView(
            heartbeat.Name,
            heartbeat.Slots,
            heartbeat.BusySlots,
            heartbeat.LayerStoreBytes,
            heartbeat.JobsDone,
            heartbeat.Version,
            heartbeat.Host,
            heartbeat.MetricsPort,
            heartbeat.StartedAt,
            _time.GetUtcNow(),
            heartbeat.AffinityQueue,
            heartbeat.BytesDownloaded,
            heartbeat.Platforms.Count == 0 ? [FarmPlatforms.Default] : heartbeat.Platforms,
            heartbeat.EmulatedPlatforms);
    }

    public void Dispose() => _meter.Dispose();
}
