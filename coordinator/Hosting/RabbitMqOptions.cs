using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// Where RabbitMQ is, bound from <c>Farm:RabbitMq</c> (the section the workers read too); a <c>FARM_RABBITMQ</c> URL
/// (<c>amqp://user:password@host:port/vhost</c>) overrides it. The password never appears in <see cref="ToString"/>.
/// The worker has the same class: the coordinator must not depend on the worker assembly.
/// </summary>
public sealed class CoordinatorRabbitMqOptions
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

    /// <summary>Applies an <c>amqp://user:password@host:port/vhost</c> URL over the current values.</summary>
    /// <exception cref="CoordinatorConfigurationException">The URL is not an amqp:// URL.</exception>
    public void ApplyUrl(string url)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "rabbitmq"))
        {
            // The URL itself is not repeated: it may hold a password.
            throw new CoordinatorConfigurationException($"{UrlVariable} is not an AMQP URL; set it to amqp://USER:PASSWORD@HOST:PORT/VHOST or unset it and use {Section}:Host/Port/User/Password.");
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
