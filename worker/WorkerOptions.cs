using System.ComponentModel.DataAnnotations;

namespace Farm.Worker;

/// <summary>Settings of a worker process, bound from the <c>Farm:Worker</c> configuration section.</summary>
public sealed class WorkerOptions : IValidatableObject
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

    /// <summary>Port of the worker's Prometheus <c>/metrics</c> endpoint; 0 (default) serves none.</summary>
    [Range(0, 65535)]
    public int MetricsPort { get; set; }

    /// <summary>
    /// Where <c>/metrics</c> listens: <c>127.0.0.1</c> (default), or <c>+</c> for every interface (a Prometheus on
    /// another machine or container scrapes it).
    /// </summary>
    [Required]
    public string MetricsAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// Port of the worker's <c>/livez</c> and <c>/readyz</c> endpoints (<see cref="Hosting.WorkerHealthEndpoint"/>), for an
    /// orchestrator's probes; 0 (default) serves none.
    /// </summary>
    [Range(0, 65535)]
    public int HealthPort { get; set; }

    /// <summary>
    /// Where <c>/livez</c> and <c>/readyz</c> listen: <c>127.0.0.1</c> (default), or <c>+</c> for every interface (a
    /// kubelet probes the pod's address).
    /// </summary>
    [Required]
    public string HealthAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// Deliveries of one job that may end without a result (its worker killed, or stopped and handing the job back)
    /// before a worker fails it with FARM3006 instead of running it again.
    /// </summary>
    [Range(1, 100)]
    public int MaxDeliveries { get; set; } = 3;

    /// <summary>
    /// How long a stopping worker (SIGTERM) lets its running jobs finish; then it kills their steps and hands the jobs
    /// back to the queue for another worker (each hand-back counts as a delivery, see <see cref="MaxDeliveries"/>).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the worker tells coordinators it is alive (<see cref="Contracts.WorkerHeartbeat"/>).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The platforms this worker runs steps for, <c>os/arch[/variant]</c> (<c>Farm:Worker:Platforms:0=linux/amd64</c>);
    /// empty (default): every one it can, its machine's own and those qemu-user-static emulates here
    /// (<see cref="Platforms.WorkerPlatforms"/>). A platform it can run neither way stops it from starting (FARM3131).
    /// </summary>
    public List<string> Platforms { get; set; } = [];

    /// <summary>
    /// The CA file (PEM) that signed the coordinators' HTTPS certificates, which a worker trusts, instead of the system's
    /// roots, when it fetches a job's build secrets from the coordinator that accepted the build (a
    /// <see cref="Contracts.JobSecretsGrant"/>); empty: the system's roots.
    /// </summary>
    public string? CoordinatorCaPath { get; set; }

    /// <summary>
    /// A cache mount whose files take more bytes than this after a step is not published to the farm's other workers
    /// (a log line says so); they keep the previous snapshot. 1 GiB by default.
    /// </summary>
    [Range(0L, long.MaxValue)]
    public long CacheSnapshotMaxBytes { get; set; } = 1L << 30;

    /// <summary>
    /// How long a <c>sharing=locked</c> cache stays held by this worker without renewal (renewed every third of it while
    /// its step runs): when the worker dies, another takes the cache after at most this long. 30 s by default.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan CacheLeaseTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a <c>sharing=locked</c> step waits for its cache's newest state while another worker, which wrote it,
    /// still publishes its snapshot; then it goes on from the latest published snapshot (a log line says so). 2 minutes
    /// by default.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan CachePublishWait { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Defaults and caps of RUN steps' memory, processes, CPU and time (<c>Farm:Worker:StepLimits</c>).</summary>
    public StepLimitsOptions StepLimits { get; set; } = new();

    /// <summary>The fence around RUN steps' private networks (<c>Farm:Worker:Sandbox</c>).</summary>
    public WorkerSandboxOptions Sandbox { get; set; } = new();

    /// <summary>Validates the nested <see cref="StepLimits"/>, which data annotations alone would not reach.</summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(StepLimits, new ValidationContext(StepLimits), results, validateAllProperties: true);
        return results.Select(r => r.ErrorMessage?.StartsWith("StepLimits:", StringComparison.Ordinal) == true
            ? r
            : new ValidationResult($"StepLimits:{r.MemberNames.FirstOrDefault()}: {r.ErrorMessage}", r.MemberNames));
    }
}
