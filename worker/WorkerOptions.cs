using System.ComponentModel.DataAnnotations;

namespace Farm.Worker;

/// <summary>Settings of a worker process, bound from the <c>Farm:Worker</c> configuration section.</summary>
public sealed class WorkerOptions
{
    public const string Section = "Farm:Worker";

    /// <summary>Shown in build events and dashboards; unique per process.</summary>
    [Required]
    public string Name { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>Layer store, snapshots and runc state live here.</summary>
    [Required]
    public string StateDirectory { get; set; } = "/var/lib/farm/worker";

    /// <summary>How many jobs run at once; also the queue prefetch, so a busy worker takes no more.</summary>
    [Range(1, 256)]
    public int Slots { get; set; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Budget of the extracted-layer store before least recently used layers are evicted.</summary>
    [Range(1L << 20, long.MaxValue)]
    public long LayerStoreBytes { get; set; } = 20L << 30;
}
