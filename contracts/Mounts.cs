namespace Farm.Contracts;

// RUN --mount in the job contract. A mount names what it shows, never a secret's value: secrets are fetched by the
// worker when the step starts (docs/architecture.md, "Build secrets"), so a BuildLayer at rest in RabbitMQ holds
// none.

/// <summary>
/// One <c>RUN --mount</c> of a <see cref="RunStep"/>, its sources resolved by the coordinator. Exactly the fields of
/// its <see cref="Type"/> are set. See <see href="https://docs.docker.com/reference/dockerfile/#run---mount">Dockerfile
/// reference: RUN --mount</see>.
/// </summary>
public sealed record RunStepMount
{
    /// <summary><c>bind</c>, <c>cache</c>, <c>tmpfs</c>, <c>secret</c> or <c>ssh</c>.</summary>
    public required string Type { get; init; }

    /// <summary>Absolute path in the container; null for a secret given only as an environment variable.</summary>
    public string? Target { get; init; }

    /// <summary>
    /// For bind: what to show (a stage's or an image's layers, or the context tar); for cache: what a new cache
    /// directory starts with (<c>from=</c>), or null for empty.
    /// </summary>
    public CopySource? From { get; init; }

    /// <summary>Path inside <see cref="From"/>; null is its root.</summary>
    public string? Source { get; init; }

    /// <summary>Read-only in the container.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>The cache, secret or ssh id.</summary>
    public string? Id { get; init; }

    /// <summary>For cache: the tenant whose caches it lives among (null without auth); caches are per tenant and id.</summary>
    public string? Tenant { get; init; }

    /// <summary>For cache: <c>shared</c>, <c>private</c> or <c>locked</c>.</summary>
    public string Sharing { get; init; } = "shared";

    /// <summary>File mode of a new cache directory, a secret file or the ssh socket; null for the type's default.</summary>
    public int? Mode { get; init; }

    /// <summary>Owner of a new cache directory, a secret file or the ssh socket.</summary>
    public int Uid { get; init; }

    /// <summary>Group of a new cache directory, a secret file or the ssh socket.</summary>
    public int Gid { get; init; }

    /// <summary>For secret: the environment variable that gets the value.</summary>
    public string? Env { get; init; }

    /// <summary>For secret and ssh: fail the step when the build does not have it; otherwise the mount is left out.</summary>
    public bool Required { get; init; }

    /// <summary>For tmpfs: bytes; null for the kernel's default.</summary>
    public long? SizeBytes { get; init; }
}

/// <summary>
/// The secrets and SSH agents a build's RUN steps may mount, as the worker receives them just before the step runs,
/// from the coordinator that holds them in memory. Never serialized into a message, grain state or log.
/// </summary>
public sealed record BuildSecretValues
{
    /// <summary>Secret id → value bytes.</summary>
    public IReadOnlyDictionary<string, byte[]> Secrets { get; init; } = new Dictionary<string, byte[]>();

    /// <summary>
    /// SSH id → the path of an agent's unix socket on the worker's machine (only the local farm, whose worker runs
    /// beside the client, has any).
    /// </summary>
    public IReadOnlyDictionary<string, string> SshAgents { get; init; } = new Dictionary<string, string>();

    /// <summary>Nothing to mount.</summary>
    public static BuildSecretValues None { get; } = new();

    /// <summary>A summary safe for logs: ids only.</summary>
    public override string ToString() =>
        $"BuildSecretValues {{ Secrets = [{string.Join(", ", Secrets.Keys)}], SshAgents = [{string.Join(", ", SshAgents.Keys)}] }}";
}
