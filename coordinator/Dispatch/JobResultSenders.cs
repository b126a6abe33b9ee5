using Farm.Contracts;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Who may report a job's result: with auth on, the farm's own RabbitMQ users (the coordinator's, and
/// <c>Farm:Coordinator:Auth:WorkerAmqpUsers</c>), recognised by the AMQP <c>user_id</c> RabbitMQ checks against the
/// publishing connection. Without auth, anyone who can publish (the local farm, a loopback-only farm). Defence in
/// depth behind RabbitMQ's permissions: a tenant's user must not be able to write to the results' exchanges at all, and
/// cache keys are predictable hashes, so a forged <see cref="LayerBuilt"/> would otherwise poison every build of that
/// step.
/// </summary>
public sealed class JobResultSenders
{
    private readonly HashSet<string>? _users;

    private JobResultSenders(HashSet<string>? users) => _users = users;

    /// <summary>No check: every result is accepted.</summary>
    public static JobResultSenders Anyone { get; } = new(null);

    /// <summary>Only results published by <paramref name="users"/>.</summary>
    public static JobResultSenders Only(IEnumerable<string> users) =>
        new(new HashSet<string>(users.Where(u => !string.IsNullOrWhiteSpace(u)).Select(u => u.Trim()), StringComparer.Ordinal));

    /// <summary>Whether a result published with AMQP <c>user_id</c> <paramref name="user"/> (null: none) is believed.</summary>
    public bool Accepts(string? user) => _users is null || (!string.IsNullOrEmpty(user) && _users.Contains(user));

    public override string ToString() => _users is null ? "job results from anyone" : $"job results from {string.Join(", ", _users.Order(StringComparer.Ordinal))}";
}

/// <summary>FARM4250: a job result from a publisher that is not one of the farm's own users was dropped.</summary>
public sealed class JobResultNotAuthorizedException(string result, Guid jobId, string reason)
    : FarmException(FarmErrorCodes.JobResultNotAuthorized, $"A {result} for job {jobId} was dropped: {reason}. Only the coordinator's RabbitMQ user and Farm:Coordinator:Auth:WorkerAmqpUsers may report job results; take write permission on the Farm.Contracts:LayerBuilt and LayerBuildFailed exchanges away from every other user.");
