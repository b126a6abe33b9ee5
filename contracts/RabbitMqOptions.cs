using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Farm.Contracts;

/// <summary>
/// Where the farm's RabbitMQ is (coordinator, workers and the CLI read the same settings), bound from
/// <c>Farm:RabbitMq</c>; a <c>FARM_RABBITMQ</c> URL
/// (<c>amqp://user:password@host:port/vhost</c>, or <c>amqps://</c> for TLS) overrides the section. The password never
/// appears in <see cref="ToString"/> or in logs.
/// </summary>
/// <remarks>
/// Over TLS the server's certificate must be for <see cref="Host"/> and chain to <see cref="CaPath"/> when set (it
/// replaces the system's roots), else to a root the system trusts; see <see cref="ServiceCertificates"/>.
/// </remarks>
public sealed class RabbitMqOptions
{
    public const string Section = "Farm:RabbitMq";

    /// <summary>The environment variable holding a whole AMQP URL.</summary>
    public const string UrlVariable = "FARM_RABBITMQ";

    /// <summary>The environment variable naming the CA file (PEM) that RabbitMQ's TLS certificate must chain to.</summary>
    public const string CaVariable = "FARM_RABBITMQ_CA";

    /// <summary>The port of RabbitMQ's TLS listener when an <c>amqps://</c> URL names none.</summary>
    public const int DefaultTlsPort = 5671;

    [Required]
    public string Host { get; set; } = "127.0.0.1";

    [Range(1, 65535)]
    public int Port { get; set; } = 5672;

    [Required]
    public string VirtualHost { get; set; } = "/";

    [Required]
    public string User { get; set; } = "guest";

    public string Password { get; set; } = "guest";

    /// <summary>Connect over TLS (AMQPS); an <c>amqps://</c> URL sets it.</summary>
    public bool UseTls { get; set; }

    /// <summary>
    /// A PEM file with the CA that signed RabbitMQ's certificate: the only root trusted for this connection. Empty: the
    /// system's roots. <c>FARM_RABBITMQ_CA</c> overrides it.
    /// </summary>
    public string? CaPath { get; set; }

    /// <summary>
    /// The AMQP heartbeat asked of the broker (the lower of this and the broker's own wins). A process whose machine
    /// vanishes (link down, power off) is noticed by RabbitMQ after about this long, and the jobs it held return to the
    /// queue for other workers. Unset: the client library's default (60 s, as the broker's).
    /// </summary>
    /// <remarks>No range attribute: this assembly is trimmed into the NativeAOT CLI, where RangeAttribute on a TimeSpan is unsafe.</remarks>
    public TimeSpan? Heartbeat { get; set; }

    /// <summary>Applies an <c>amqp://</c> or <c>amqps://user:password@host:port/vhost</c> URL over the current values.</summary>
    /// <exception cref="InvalidRabbitMqUrlException">The URL is not an amqp:// or amqps:// URL.</exception>
    public void ApplyUrl(string url)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps" or "rabbitmq"))
        {
            throw new InvalidRabbitMqUrlException();
        }

        UseTls = uri.Scheme == "amqps";
        Host = uri.Host;
        Port = uri.IsDefaultPort || uri.Port <= 0 ? (UseTls ? DefaultTlsPort : 5672) : uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            User = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            Password = colon < 0 ? string.Empty : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }

        var path = uri.AbsolutePath.TrimStart('/');
        VirtualHost = path.Length == 0 ? "/" : Uri.UnescapeDataString(path);
    }

    /// <summary>
    /// The certificate check for <see cref="UseTls"/>: <see cref="CaPath"/> as the only root, or null for the system's
    /// validation (which checks the host name and the system's roots).
    /// </summary>
    /// <exception cref="ServiceCaUnreadableException">The CA file cannot be used (FARM3030).</exception>
    public System.Net.Security.RemoteCertificateValidationCallback? CertificateValidation() =>
        string.IsNullOrWhiteSpace(CaPath) ? null : ServiceCertificates.TrustOnly(ServiceCertificates.LoadCa(CaPath, $"{Section}:CaPath or {CaVariable}"));

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(UseTls ? "amqps" : "amqp")}://{User}:***@{Host}:{Port}/{Uri.EscapeDataString(VirtualHost)}{(UseTls && !string.IsNullOrWhiteSpace(CaPath) ? " (CA " + CaPath + ")" : string.Empty)}");
}

/// <summary>FARM3010: FARM_RABBITMQ is not an AMQP URL. The URL itself is not repeated: it may hold a password.</summary>
public sealed class InvalidRabbitMqUrlException()
    : FarmException(FarmErrorCodes.InvalidRabbitMqUrl, $"{RabbitMqOptions.UrlVariable} is not an AMQP URL; set it to amqp://USER:PASSWORD@HOST:PORT/VHOST (amqps:// for TLS) or unset it and use Farm:RabbitMq:Host/Port/User/Password.");
