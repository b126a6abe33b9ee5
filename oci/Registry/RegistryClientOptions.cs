namespace Farm.Oci.Registry;

/// <summary>How Farm talks to registries. Bound from configuration; every value has a working default.</summary>
public sealed record RegistryClientOptions
{
    /// <summary>
    /// Registries (<c>host:port</c>) that may be spoken to over plain HTTP when they do not answer TLS.
    /// Loopback registries are always allowed (see <see cref="LoopbackIsInsecure"/>).
    /// </summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];

    /// <summary>Allow plain HTTP to 127.0.0.0/8, ::1 and localhost, as Docker does.</summary>
    public bool LoopbackIsInsecure { get; init; } = true;

    /// <summary>
    /// Docker's per-registry CA directory: <c>&lt;dir&gt;/&lt;host:port&gt;/*.crt</c> are trusted as roots for that
    /// registry in addition to the system store.
    /// </summary>
    public string CertsDirectory { get; init; } = "/etc/docker/certs.d";

    /// <summary>TCP connect plus TLS handshake; short, so a dead registry fails fast.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Whole-request limit; long, because a monolithic upload of a big chunk takes time.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Retries after the first attempt on 429, 5xx and dropped connections.</summary>
    public int MaxRetries { get; init; } = 4;

    /// <summary>First back-off delay; doubled per retry, with jitter, capped at <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Blobs larger than this are uploaded in chunks (PATCH); smaller ones in one PUT.</summary>
    public long ChunkedUploadThreshold { get; init; } = 16 * 1024 * 1024;

    /// <summary>Bytes per PATCH of a chunked upload; also the most an upload holds in memory.</summary>
    public int ChunkSize { get; init; } = 8 * 1024 * 1024;

    /// <summary>The platform chosen from an image index.</summary>
    public Platform Platform { get; init; } = Platform.LinuxAmd64;

    /// <summary>Page size asked for when listing tags; the registry may return fewer per page.</summary>
    public int TagPageSize { get; init; } = 100;

    /// <summary>Throws when a value makes no sense, so a bad configuration fails at start-up.</summary>
    public void Validate()
    {
        if (ChunkSize < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, "ChunkSize must be at least 1024 bytes.");
        }

        if (ChunkedUploadThreshold < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ChunkedUploadThreshold), ChunkedUploadThreshold, "ChunkedUploadThreshold must not be negative.");
        }

        if (MaxRetries < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRetries), MaxRetries, "MaxRetries must not be negative.");
        }

        if (ConnectTimeout <= TimeSpan.Zero || RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), "Timeouts must be positive.");
        }
    }

    internal bool IsInsecure(string registry)
    {
        if (InsecureRegistries.Contains(registry, StringComparer.OrdinalIgnoreCase))
        {
            return true;
        }

        if (!LoopbackIsInsecure)
        {
            return false;
        }

        var host = HostOf(registry);
        return host == "localhost" || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip));
    }

    internal static string HostOf(string registry)
    {
        if (registry.StartsWith('['))
        {
            var close = registry.IndexOf(']', StringComparison.Ordinal);
            return close > 0 ? registry[1..close] : registry;
        }

        var colon = registry.LastIndexOf(':');
        return colon > 0 ? registry[..colon] : registry;
    }
}
