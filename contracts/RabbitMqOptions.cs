using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Farm.Contracts;

/// <summary>
/// Where the farm's RabbitMQ is (coordinator, workers and the CLI read the same settings), bound from
/// <c>Farm:RabbitMq</c>; a <c>FARM_RABBITMQ</c> URL
/// (<c>amqp://user:password@host:port/vhost</c>) overrides the section. The password never appears in
/// <see cref="ToString"/> or in logs.
/// </summary>
public sealed class RabbitMqOptions
{
    public const string Section = "Farm:RabbitMq";

    /// <summary>The environment variable holding a whole AMQP URL.</summary>
    public const string UrlVariable = "FARM_RABBITMQ";

    [Required]
    public string Host { get; set; } = "127.0.0.1";

    [Range(1, 65535)]
    public int Port { get; set; } = 5672;

    [Required]
    public string VirtualHost { get; set; } = "/";

    [Required]
    public string User { get; set; } = "guest";

    public string Password { get; set; } = "guest";

    /// <summary>
    /// The AMQP heartbeat asked of the broker (the lower of this and the broker's own wins). A process whose machine
    /// vanishes (link down, power off) is noticed by RabbitMQ after about this long, and the jobs it held return to the
    /// queue for other workers. Unset: the client library's default (60 s, as the broker's).
    /// </summary>
    /// <remarks>No range attribute: this assembly is trimmed into the NativeAOT CLI, where RangeAttribute on a TimeSpan is unsafe.</remarks>
    public TimeSpan? Heartbeat { get; set; }

    /// <summary>Applies an <c>amqp://user:password@host:port/vhost</c> URL over the current values.</summary>
    /// <exception cref="InvalidRabbitMqUrlException">The URL is not an amqp:// URL.</exception>
    public void ApplyUrl(string url)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "rabbitmq"))
        {
            throw new InvalidRabbitMqUrlException();
        }

        Host = uri.Host;
        Port = uri.IsDefaultPort || uri.Port <= 0 ? 5672 : uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            User = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            Password = colon < 0 ? string.Empty : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }

        var path = uri.AbsolutePath.TrimStart('/');
        VirtualHost = path.Length == 0 ? "/" : Uri.UnescapeDataString(path);
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"amqp://{User}:***@{Host}:{Port}/{Uri.EscapeDataString(VirtualHost)}");
}

/// <summary>FARM3010: FARM_RABBITMQ is not an AMQP URL. The URL itself is not repeated: it may hold a password.</summary>
public sealed class InvalidRabbitMqUrlException()
    : FarmException(FarmErrorCodes.InvalidRabbitMqUrl, $"{RabbitMqOptions.UrlVariable} is not an AMQP URL; set it to amqp://USER:PASSWORD@HOST:PORT/VHOST or unset it and use Farm:RabbitMq:Host/Port/User/Password.");
