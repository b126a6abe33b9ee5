using Farm.Contracts;
using Farm.Coordinator.Telemetry;
using Farm.Coordinator.Workers;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Farm.Telemetry.Tests;

/// <summary>The coordinator's view of its workers: slots and load from heartbeats, forgotten when they stop coming.</summary>
public sealed class WorkerRegistryTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private WorkerRegistry NewRegistry() => new(Options.Create(new TelemetryOptions { WorkerTimeout = TimeSpan.FromSeconds(15) }), _time);

    private static WorkerHeartbeat Beat(string name, int busy = 0, bool stopping = false) =>
        new() { Name = name, Slots = 4, BusySlots = busy, LayerStoreBytes = 1000, Stopping = stopping };

    [Fact]
    public void A_worker_is_listed_with_its_slots_and_load_from_its_latest_heartbeat()
    {
        using var registry = NewRegistry();
        registry.Record(Beat("w1", busy: 1));
        _time.Advance(TimeSpan.FromSeconds(5));
        registry.Record(Beat("w1", busy: 3));
        registry.Record(Beat("w2"));

        var workers = registry.All;
        Assert.Equal(["w1", "w2"], workers.Select(w => w.Name));
        Assert.Equal((4, 3, 1), (workers[0].Slots, workers[0].BusySlots, workers[0].FreeSlots));
        Assert.Equal(_time.GetUtcNow(), workers[0].LastHeartbeat);
    }

    [Fact]
    public void A_worker_that_misses_heartbeats_past_the_timeout_is_forgotten_and_one_that_stops_is_forgotten_at_once()
    {
        using var registry = NewRegistry();
        registry.Record(Beat("quiet"));
        registry.Record(Beat("stopping"));
        registry.Record(Beat("alive"));

        registry.Record(Beat("stopping", stopping: true));
        Assert.Equal(["alive", "quiet"], registry.All.Select(w => w.Name));

        _time.Advance(TimeSpan.FromSeconds(10));
        registry.Record(Beat("alive"));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(["alive"], registry.All.Select(w => w.Name));

        // A forgotten worker that reports again is back.
        registry.Record(Beat("quiet"));
        Assert.Equal(["alive", "quiet"], registry.All.Select(w => w.Name));
    }
}
