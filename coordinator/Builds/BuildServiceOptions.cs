using System.ComponentModel.DataAnnotations;

namespace Farm.Coordinator.Builds;

/// <summary>Settings of the coordinator's build service, bound from the <c>Farm:Builds</c> configuration section.</summary>
public sealed class BuildServiceOptions
{
    public const string Section = "Farm:Builds";

    /// <summary>
    /// The blob store submitted builds use: the context tar and its index are uploaded here before submitting, parent
    /// layers are read and new layers written here.
    /// </summary>
    [Required]
    public string CacheStore { get; set; } = "registry://127.0.0.1:5100/farm/cache";

    /// <summary>
    /// The same store as clients reach it, when that address differs from the farm's own (<see cref="CacheStore"/>):
    /// <c>GET /store</c> names it, so <c>farm build --farm</c> uploads contexts there. In infra/compose.yaml the
    /// processes reach the registry as <c>registry:5000</c> on the compose network, a user's CLI on the host as the
    /// port published on loopback. Empty: <see cref="CacheStore"/>.
    /// </summary>
    public string? ClientCacheStore { get; set; }

    /// <summary>The coordinator's own files: the action cache lives in <c>action-cache</c> below it when no Redis is configured.</summary>
    [Required]
    public string StateDirectory { get; set; } = "/var/lib/farm/coordinator";

    /// <summary>
    /// The API's clients are this machine's owner (the local farm, on its owner-only unix socket): a submission may name
    /// a context directory to read in place and an <c>--output</c> path to write. Off for a shared coordinator, which
    /// must never read or write its own files on a client's word.
    /// </summary>
    public bool LocalClient { get; set; }

    /// <summary>
    /// The entitlements a build may ask for (<c>--allow</c>), as buildkitd's <c>--allow-insecure-entitlement</c>:
    /// <c>network.host</c> lets <c>RUN --network=host</c> share the worker's network, and with it everything the worker
    /// reaches. None on a shared coordinator unless its operator adds them; the local farm grants <c>network.host</c>
    /// to its own user.
    /// </summary>
    public List<string> Entitlements { get; set; } = [];

    /// <summary>
    /// The build cache cap, in bytes (the layers the action cache entries refer to, each counted once): entries are
    /// evicted least recently used first until their layers fit. The local farm does it after a build, when no other
    /// build runs, and deletes the layers no image needs; a shared coordinator every <see cref="CacheCapInterval"/>, one
    /// coordinator of the cluster at a time, and deletes the evicted entries' cache manifests, so the registry's garbage
    /// collection frees their layers. 0, the default, is no cap.
    /// </summary>
    [Range(0, long.MaxValue)]
    public long CacheMaxBytes { get; set; }

    /// <summary>How often a shared coordinator enforces <see cref="CacheMaxBytes"/>; at most once per interval in a cluster.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan CacheCapInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The policy on build contexts the farm fetches from a URL for its clients (<c>Farm:Builds:UrlContexts</c>).</summary>
    public UrlContexts.UrlContextOptions UrlContexts { get; set; } = new();
}
