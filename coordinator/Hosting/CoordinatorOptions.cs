using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Net;
using Farm.Contracts;

namespace Farm.Coordinator.Hosting;

/// <summary>How the coordinator's jobs travel: in this process (embedded farm, tests) or through RabbitMQ.</summary>
public enum FarmTransport
{
    InMemory,
    RabbitMq,
}

/// <summary>Settings of a coordinator, bound from the <c>Farm:Coordinator</c> configuration section.</summary>
public sealed class CoordinatorOptions
{
    public const string Section = "Farm:Coordinator";

    /// <summary>Silos with the same cluster id form one cluster.</summary>
    [Required]
    public string ClusterId { get; set; } = "farm";

    /// <summary>Identifies the farm's persisted grain state across cluster restarts.</summary>
    [Required]
    public string ServiceId { get; set; } = "farm";

    /// <summary>Silo-to-silo port.</summary>
    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Orleans client gateway port.</summary>
    [Range(1, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// A StackExchange.Redis connection string (<c>127.0.0.1:6379</c>): Redis clustering and Redis grain storage.
    /// Empty: one localhost silo with grain state in memory (embedded farm, tests).
    /// </summary>
    /// <remarks>
    /// A shared Redis wants a user and TLS: <c>redis.example:6380,user=farm,password=SECRET,ssl=true</c> (an ACL user;
    /// <c>password=</c> alone authenticates as <c>default</c>). The certificate must be for the host named and chain to
    /// <see cref="RedisCaPath"/> when set. The string is a secret: it is never logged.
    /// </remarks>
    public string? Redis { get; set; }

    /// <summary>
    /// A PEM file with the CA that signed Redis's TLS certificate: the only root trusted for Redis (and setting it turns
    /// TLS on). Empty: with <c>ssl=true</c>, the system's roots.
    /// </summary>
    public string? RedisCaPath { get; set; }

    public FarmTransport Transport { get; set; } = FarmTransport.RabbitMq;

    /// <summary>
    /// Runs a worker (<c>Farm:Worker</c> settings) in this process on the coordinator's bus: the local farm, and a
    /// one-process farm for tests.
    /// </summary>
    public bool InProcessWorker { get; set; }

    /// <summary>Jobs a layer grain publishes for one outcome: retryable failures (store or worker faults) are tried again up to this.</summary>
    [Range(1, 20)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>A job with no result after this long fails (FARM4006): no worker took it, or its result was lost.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan JobTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Cache affinity (docs/architecture.md, "A build, step by step", 6): a job goes first to the live worker that holds
    /// the most bytes of its parent layers extracted, and falls back to the farm's queue (any free worker) when that
    /// worker has not taken it within this long. Zero, the default, sends every job to the farm's queue: while a worker
    /// runs a job from its own queue, its farm-queue consumer may hold one more job for up to this long before handing it
    /// on, which can delay independent stages (docs/configuration.md). The local farm (one worker) and the in-memory
    /// transport never use it.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan AffinityWait { get; set; }

    /// <summary>
    /// Budget of the cache mounts' snapshots in the blob store, all tenants together (docs/architecture.md, "Cache
    /// mounts across the farm"): past it, the least recently used caches' snapshots are forgotten (their next user
    /// starts empty). 10 GiB by default.
    /// </summary>
    [Range(0L, long.MaxValue)]
    public long CacheMountSnapshotBytes { get; set; } = 10L << 30;

    /// <summary>
    /// How often the reminder of an unfinished build checks that a silo runs it: after the silo running a build stops,
    /// another silo resumes it within about this long.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan ResumeCheckPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often a coordinator on Redis checks that Redis answers and still holds its data (<c>Cluster/RedisLossMonitor</c>):
    /// <c>/healthz</c> turns unhealthy within about this long of Redis going away, and what Redis lost is restored.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan RedisCheckPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The address the HTTP API listens on: <c>127.0.0.1</c> (default, this machine only), an interface's address,
    /// <c>0.0.0.0</c> or <c>::</c>. Beyond loopback the coordinator needs tokens (<c>Farm:Coordinator:Auth</c>) or
    /// refuses to start (FARM4232).
    /// </summary>
    [Required]
    public string HttpAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// The address the silo-to-silo and gateway ports listen on, with Redis clustering: <c>127.0.0.1</c> (default, every
    /// coordinator on this machine), an interface's address, or <c>0.0.0.0</c> / <c>::</c> for every interface (then
    /// <see cref="AdvertisedAddress"/> must say which one other coordinators reach). Without Redis the silo is alone and
    /// stays on loopback.
    /// </summary>
    [Required]
    public string SiloAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// The address other coordinators reach this silo at, written into the membership table: this machine's address on
    /// the network the coordinators share. Empty: <see cref="SiloAddress"/>, which must then be a specific address.
    /// </summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>
    /// How long a probe of another silo may go unanswered before it counts as missed. With
    /// <see cref="MissedProbesLimit"/> it sets how soon a dead coordinator (killed, its machine gone) is declared dead
    /// and its builds taken over: about <c>ProbeTimeout × MissedProbesLimit</c>. Lower it on a quiet network; a
    /// coordinator stalled longer than that (a long GC pause, a saturated machine) is declared dead too.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "00:10:00")]
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Missed probes after which a silo votes another one dead (see <see cref="ProbeTimeout"/>).</summary>
    [Range(1, 20)]
    public int MissedProbesLimit { get; set; } = 3;

    /// <summary>
    /// This coordinator's API as its workers reach it (e.g. <c>https://coord-1.farm.internal:8480</c>): a worker running
    /// a step that mounts a build secret fetches it there, with its job's credential. Empty: the listener's own address
    /// (<see cref="HttpAddress"/> and the port it listens on; <see cref="AdvertisedAddress"/> when it listens on every
    /// interface). A coordinator that cannot tell refuses <c>--secret</c> (FARM4312).
    /// </summary>
    public string? WorkerApiUrl { get; set; }

    /// <summary>Port of the coordinator process's HTTP endpoints (API, <c>/healthz</c>, dashboard, <c>/metrics</c>); 0 picks a free one.</summary>
    [Range(0, 65535)]
    public int HttpPort { get; set; } = 8480;

    /// <summary>
    /// The silo's listening and advertised endpoints from <see cref="SiloAddress"/> and <see cref="AdvertisedAddress"/>.
    /// </summary>
    /// <exception cref="SiloAddressSettingsException">An address is not an IP address, or nothing says which address to advertise (FARM4260).</exception>
    public (IPAddress Listen, IPAddress Advertised) SiloEndpoints()
    {
        if (!IPAddress.TryParse(SiloAddress, out var listen))
        {
            throw new SiloAddressSettingsException($"Farm:Coordinator:SiloAddress '{SiloAddress}' is not an IP address; set it to this machine's address (or 0.0.0.0 with Farm:Coordinator:AdvertisedAddress)");
        }

        if (string.IsNullOrWhiteSpace(AdvertisedAddress))
        {
            if (listen.Equals(IPAddress.Any) || listen.Equals(IPAddress.IPv6Any))
            {
                throw new SiloAddressSettingsException($"Farm:Coordinator:SiloAddress is {SiloAddress} (every interface) and Farm:Coordinator:AdvertisedAddress is not set; set it to the address other coordinators reach this one at");
            }

            return (listen, listen);
        }

        if (!IPAddress.TryParse(AdvertisedAddress, out var advertised) || advertised.Equals(IPAddress.Any) || advertised.Equals(IPAddress.IPv6Any))
        {
            throw new SiloAddressSettingsException($"Farm:Coordinator:AdvertisedAddress '{AdvertisedAddress}' is not one IP address; set it to the address other coordinators reach this one at");
        }

        return (listen, advertised);
    }

    /// <summary>The Redis connection string may hold a password: not shown.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"cluster {ClusterId}/{ServiceId}, silo {SiloAddress}:{SiloPort} (advertised {AdvertisedAddress ?? SiloAddress}), gateway :{GatewayPort}, probes {ProbeTimeout} x {MissedProbesLimit}, {(string.IsNullOrEmpty(Redis) ? "localhost clustering, memory storage" : "Redis clustering and storage")}, {Transport}, HTTP on {HttpAddress}:{HttpPort}, {MaxAttempts} attempts, job timeout {JobTimeout}, affinity wait {AffinityWait}");
}

/// <summary>FARM4260: the silo's listening or advertised address cannot be used; the coordinator does not start.</summary>
public sealed class SiloAddressSettingsException(string what)
    : FarmException(FarmErrorCodes.SiloAddressSettings, what + ".");
