using System.Globalization;

namespace Farm.Coordinator.Auth;

/// <summary>
/// Who may use a coordinator's HTTP API and queue, bound from <c>Farm:Coordinator:Auth</c>. Auth is on as soon as
/// tokens are configured (<see cref="TokensFile"/> or <see cref="Tokens"/>): the one option to turn it on. Off, every
/// request is served (a loopback-only coordinator for one developer, the tests); a coordinator bound beyond loopback
/// refuses to start without tokens unless <see cref="Disabled"/> says so explicitly (FARM4232).
/// </summary>
public sealed class CoordinatorAuthOptions
{
    public const string Section = "Farm:Coordinator:Auth";

    /// <summary>
    /// A file of lines <c>TENANT sha256:HEX [build|read|admin]</c> (a bearer token's SHA-256; <c>farm-coordinator token
    /// create</c> prints one) and <c>TENANT amqp:USER</c> (a RabbitMQ user whose queued submissions belong to the tenant);
    /// <c>#</c> starts a comment. Read at start-up.
    /// </summary>
    public string? TokensFile { get; set; }

    /// <summary>More lines of the same form, e.g. from an environment secret (<c>Farm__Coordinator__Auth__Tokens__0</c>).</summary>
    public IList<string> Tokens { get; } = [];

    /// <summary>
    /// RabbitMQ users of the farm's workers when they are not the coordinator's own user. With auth on, job results
    /// (<c>LayerBuilt</c>, <c>LayerBuildFailed</c>) are accepted only from these and the coordinator's user: a tenant's
    /// user given write permission on the results' exchanges by mistake still cannot complete a job (FARM4250).
    /// </summary>
    public IList<string> WorkerAmqpUsers { get; } = [];

    /// <summary>Serve without auth even on a non-loopback address: the operator says the network is trusted.</summary>
    public bool Disabled { get; set; }

    /// <summary>Whether requests need a token.</summary>
    public bool Enabled => !Disabled && (!string.IsNullOrWhiteSpace(TokensFile) || Tokens.Count > 0);

    /// <summary>Only where tokens come from: their lines hold hashes, but are still nobody else's business in a log.</summary>
    public override string ToString() =>
        Enabled
            ? string.Create(CultureInfo.InvariantCulture, $"auth on: {(string.IsNullOrWhiteSpace(TokensFile) ? "no tokens file" : "tokens file " + TokensFile)}, {Tokens.Count} configured line(s)")
            : Disabled ? "auth disabled explicitly" : "auth off (no tokens configured)";
}

/// <summary>
/// The HTTP endpoint's certificate, bound from <c>Farm:Coordinator:Tls</c>: PEM files. Both set: HTTPS; neither: HTTP.
/// </summary>
public sealed class CoordinatorTlsOptions
{
    public const string Section = "Farm:Coordinator:Tls";

    /// <summary>The server certificate (PEM), its chain after it.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>Its private key (PEM, unencrypted; keep the file readable by the coordinator only).</summary>
    public string? KeyPath { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath) || !string.IsNullOrWhiteSpace(KeyPath);

    public override string ToString() => Enabled ? $"TLS with {CertificatePath} (key in a file)" : "no TLS";
}
