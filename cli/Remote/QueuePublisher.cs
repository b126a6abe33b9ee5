using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Telemetry;
using RabbitMQ.Client;

namespace Farm.Cli.Remote;

/// <summary>
/// Publishes a <see cref="SubmitBuild"/> to the farm's RabbitMQ as the MassTransit envelope the coordinator's consumer
/// reads (README.md, "Submit by queue message"), over TLS for an <c>amqps://</c> <c>FARM_RABBITMQ</c>: the fanout exchange <c>Farm.Contracts:SubmitBuild</c>, content type
/// <c>application/vnd.masstransit+json</c>, persistent. Written on RabbitMQ.Client rather than a MassTransit bus because
/// the CLI is compiled ahead of time and MassTransit generates code at run time; the envelope is a documented, small
/// format, and SubmitProcessTests holds the coordinator to it.
/// </summary>
internal static class QueuePublisher
{
    public const string Exchange = "Farm.Contracts:SubmitBuild";
    private const string ContentType = "application/vnd.masstransit+json";

    /// <summary>The header MassTransit restores the sender's trace context from (W3C <c>traceparent</c> form).</summary>
    private const string ActivityIdHeader = "MT-Activity-Id";

    /// <exception cref="SubmitFailedException">RabbitMQ could not be reached or refused the message.</exception>
    public static async Task PublishAsync(SubmitBuild submit, CancellationToken cancellationToken)
    {
        var rabbit = new RabbitMqOptions();
        if (Environment.GetEnvironmentVariable(RabbitMqOptions.UrlVariable) is { Length: > 0 } url)
        {
            rabbit.ApplyUrl(url);
        }

        if (Environment.GetEnvironmentVariable(RabbitMqOptions.CaVariable) is { Length: > 0 } ca)
        {
            rabbit.CaPath = ca;
        }

        // An amqps:// URL: TLS with the host name checked, against FARM_RABBITMQ_CA alone when set (FARM3030 when it
        // cannot be read), else the system's roots.
        var validation = rabbit.UseTls ? rabbit.CertificateValidation() : null;

        var factory = new ConnectionFactory
        {
            HostName = rabbit.Host,
            Port = rabbit.Port,
            VirtualHost = rabbit.VirtualHost,
            UserName = rabbit.User,
            Password = rabbit.Password,
            ClientProvidedName = "farm-cli",
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
            AutomaticRecoveryEnabled = false,
        };
        if (rabbit.UseTls)
        {
            factory.Ssl = new SslOption
            {
                Enabled = true,
                ServerName = rabbit.Host,
                Version = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
                CertificateValidationCallback = validation,
            };
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await using var connection = await factory.CreateConnectionAsync(timeout.Token).ConfigureAwait(false);
            await EnsureExchangeAsync(connection, timeout.Token).ConfigureAwait(false);
            // Publisher confirms: the command returns only once the broker has the message.
            await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), timeout.Token).ConfigureAwait(false);
            var headers = new Dictionary<string, object?>();
            if (FarmTelemetry.TraceParent(Activity.Current) is { } traceParent)
            {
                headers[ActivityIdHeader] = traceParent;
            }

            var properties = new BasicProperties
            {
                ContentType = ContentType,
                DeliveryMode = DeliveryModes.Persistent,
                MessageId = submit.BuildId.ToString(),
                // RabbitMQ refuses a user_id that is not the connection's user: a coordinator with auth takes the
                // build's tenant from it.
                UserId = rabbit.User,
                Headers = headers,
            };
            var body = JsonSerializer.SerializeToUtf8Bytes(Envelope(submit, factory, headers), CliJson.Default.SubmitEnvelope);
            await channel.BasicPublishAsync(Exchange, string.Empty, mandatory: false, properties, body, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The innermost cause says what went wrong (a refused certificate below "endpoints not reachable").
            var cause = e;
            while (cause.InnerException is { } inner)
            {
                cause = inner;
            }

            var reason = ReferenceEquals(cause, e) ? $"{e.GetType().Name}: {e.Message}" : $"{e.GetType().Name}: {e.Message} ({cause.GetType().Name}: {cause.Message})";
            throw new SubmitFailedException($"{reason} (RabbitMQ {rabbit})", e);
        }
    }

    /// <summary>
    /// The exchange exists once a coordinator started; a passive declare needs no configure permission, which a
    /// tenant's user lacks (it may only write to the exchange). Only when it is missing is it declared, as
    /// MassTransit declares it (the same arguments).
    /// </summary>
    private static async Task EnsureExchangeAsync(IConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            await using var passive = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            await passive.ExchangeDeclarePassiveAsync(Exchange, cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            // Not there yet: declare it below.
        }

        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await channel.ExchangeDeclareAsync(Exchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private static SubmitEnvelope Envelope(SubmitBuild submit, ConnectionFactory factory, Dictionary<string, object?> headers) => new()
    {
        MessageId = Guid.NewGuid(),
        ConversationId = Guid.NewGuid(),
        SourceAddress = $"rabbitmq://{factory.HostName}:{factory.Port}/{Uri.EscapeDataString(factory.VirtualHost.TrimStart('/'))}",
        DestinationAddress = $"rabbitmq://{factory.HostName}:{factory.Port}/{Uri.EscapeDataString(factory.VirtualHost.TrimStart('/'))}/{Exchange}?type=fanout",
        MessageType = ["urn:message:" + Exchange],
        Message = submit,
        SentTime = DateTimeOffset.UtcNow,
        Headers = headers.ToDictionary(h => h.Key, h => (string?)h.Value),
        Host = new EnvelopeHost { MachineName = Environment.MachineName, ProcessName = "farm", ProcessId = Environment.ProcessId },
    };
}

/// <summary>The MassTransit envelope (its JSON message serializer's field names).</summary>
internal sealed record SubmitEnvelope
{
    public required Guid MessageId { get; init; }
    public Guid ConversationId { get; init; }
    public string? SourceAddress { get; init; }
    public string? DestinationAddress { get; init; }
    public required IReadOnlyList<string> MessageType { get; init; }
    public required SubmitBuild Message { get; init; }
    public DateTimeOffset SentTime { get; init; }
    public IReadOnlyDictionary<string, string?> Headers { get; init; } = new Dictionary<string, string?>();
    public EnvelopeHost? Host { get; init; }
}

internal sealed record EnvelopeHost
{
    public string? MachineName { get; init; }
    public string? ProcessName { get; init; }
    public int ProcessId { get; init; }
}
