using System.Collections.Concurrent;
using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Who may speak for the workers (report a job's result, a step's output line, a heartbeat): with auth on, the farm's own RabbitMQ users (the coordinator's, and
/// <c>Farm:Coordinator:Auth:WorkerAmqpUsers</c>), recognised by the AMQP <c>user_id</c> RabbitMQ checks against the
/// publishing connection. Without auth, anyone who can publish (the local farm, a loopback-only farm). Defence in
/// depth behind RabbitMQ's permissions: a tenant's user must not be able to write to the results' exchanges at all, and
/// cache keys are predictable hashes, so a forged <see cref="LayerBuilt"/> would otherwise poison every build of that
/// step; a forged output line would write into another tenant's build log, a forged heartbeat would show a worker
/// that does not exist.
/// </summary>
public sealed partial class JobResultSenders
{
    private readonly HashSet<string>? _users;

    // Publishers already reported for a kind of message: a flood of forged lines must not flood the log too.
    private readonly ConcurrentDictionary<(string Kind, string User), byte> _reported = new();

    private JobResultSenders(HashSet<string>? users) => _users = users;

    /// <summary>No check: every result is accepted.</summary>
    public static JobResultSenders Anyone { get; } = new(null);

    /// <summary>Only results published by <paramref name="users"/>.</summary>
    public static JobResultSenders Only(IEnumerable<string> users) =>
        new(new HashSet<string>(users.Where(u => !string.IsNullOrWhiteSpace(u)).Select(u => u.Trim()), StringComparer.Ordinal));

    /// <summary>Whether a result published with AMQP <c>user_id</c> <paramref name="user"/> (null: none) is believed.</summary>
    public bool Accepts(string? user) => _users is null || (!string.IsNullOrEmpty(user) && _users.Contains(user));

    /// <summary>The AMQP <c>user_id</c> of a message from RabbitMQ, which RabbitMQ checked against the publishing connection (null: none, or another transport).</summary>
    public static string? UserOf(ConsumeContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.ReceiveContext.TryGetPayload<RabbitMqBasicConsumeContext>(out var amqp) ? amqp.Properties.UserId : null;
    }

    /// <summary>
    /// Whether a worker's output line or heartbeat (<paramref name="kind"/>) is believed; the first refusal of each
    /// publisher and kind is logged (FARM4250), the rest are dropped quietly.
    /// </summary>
    public bool Admits(ConsumeContext context, string kind, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        var user = UserOf(context);
        if (Accepts(user))
        {
            return true;
        }

        if (_reported.TryAdd((kind, user ?? string.Empty), 0))
        {
            LogDropped(logger, kind, string.IsNullOrEmpty(user) ? "a publisher without user_id" : $"the AMQP user '{user}'", FarmErrorCodes.JobResultNotAuthorized);
        }

        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} from {Publisher} dropped, and any more from it: {Code}: only the farm's own RabbitMQ users may publish what workers publish; take write permission on the Farm.Contracts exchanges away from every other user")]
    private static partial void LogDropped(ILogger logger, string kind, string publisher, string code);

    public override string ToString() => _users is null ? "job results from anyone" : $"job results from {string.Join(", ", _users.Order(StringComparer.Ordinal))}";
}

/// <summary>FARM4250: a job result from a publisher that is not one of the farm's own users was dropped.</summary>
public sealed class JobResultNotAuthorizedException(string result, Guid jobId, string reason)
    : FarmException(FarmErrorCodes.JobResultNotAuthorized, $"A {result} for job {jobId} was dropped: {reason}. Only the coordinator's RabbitMQ user and Farm:Coordinator:Auth:WorkerAmqpUsers may report job results; take write permission on the Farm.Contracts:LayerBuilt and LayerBuildFailed exchanges away from every other user.");
