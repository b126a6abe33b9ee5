using System.ComponentModel.DataAnnotations;

namespace Farm.Coordinator.Builds.UrlContexts;

/// <summary>
/// The operator's policy on build contexts the farm fetches for its clients (<c>Farm:Builds:UrlContexts</c>): a tenant
/// chooses the URL and the coordinator connects to it, so the coordinator must not become the tenant's way into the
/// farm's own network. Checked on every address the host name resolves to, never on the name.
/// </summary>
public sealed class UrlContextOptions
{
    /// <summary>Whether the farm fetches URL contexts at all; off, every one is refused (FARM4360) and clients fetch them.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Networks (CIDR, <c>203.0.113.0/24</c>, or one address) the farm fetches from. Empty: any address but loopback,
    /// link-local (<c>169.254.0.0/16</c>, <c>fe80::/10</c>), unspecified, the addresses of the farm's own services
    /// (Redis, RabbitMQ, the cache store's registry) and <see cref="DeniedNetworks"/>. Set: only addresses inside them,
    /// loopback included when listed (a test farm's <c>127.0.0.1</c>); the farm's own services stay refused by address
    /// and port.
    /// </summary>
    public List<string> AllowedNetworks { get; set; } = [];

    /// <summary>More networks the farm never fetches from (the farm's other machines, a metadata service).</summary>
    public List<string> DeniedNetworks { get; set; } = [];

    /// <summary>The largest tarball context the farm downloads, in bytes (as sent, before decompression): 512 MiB unless set.</summary>
    [Range(1, long.MaxValue)]
    public long MaxBytes { get; set; } = 512L * 1024 * 1024;
}
