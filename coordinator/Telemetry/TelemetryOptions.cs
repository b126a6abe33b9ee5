using System.ComponentModel.DataAnnotations;

namespace Farm.Coordinator.Telemetry;

/// <summary>Settings of the coordinator's monitoring, bound from the <c>Farm:Telemetry</c> configuration section.</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Farm:Telemetry";

    /// <summary>A worker with no heartbeat for this long is forgotten (three missed heartbeats at the default interval).</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "1.00:00:00")]
    public TimeSpan WorkerTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often the queue depth is read and the dashboard's history sampled.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Samples the dashboard's charts keep (720 at 5 s: the last hour).</summary>
    [Range(2, 100_000)]
    public int HistorySamples { get; set; } = 720;

    /// <summary>
    /// RabbitMQ's management API, for the workers' queue depth, e.g. <c>http://127.0.0.1:15672/</c>. Empty: the
    /// RabbitMQ host on port 15672, with the bus's credentials.
    /// </summary>
    public string? RabbitMqManagementUrl { get; set; }
}
