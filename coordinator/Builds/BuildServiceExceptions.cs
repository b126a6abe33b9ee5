using Farm.Contracts;

namespace Farm.Coordinator.Builds;

/// <summary>FARM4210: no build with this id is known to this coordinator (ids live in its memory only).</summary>
public sealed class BuildNotFoundException(Guid buildId)
    : FarmException("FARM4210", $"No build {buildId} is known to this coordinator. Check the id the submission returned; builds are kept in memory and forgotten when the coordinator restarts.")
{
    public Guid BuildId { get; } = buildId;
}

/// <summary>FARM4211: a submission lacks what a build needs; the message names the field.</summary>
public sealed class InvalidSubmissionException(string message)
    : FarmException("FARM4211", message);

/// <summary>FARM4212: the coordinator stopped while the build ran.</summary>
public sealed class BuildAbandonedException()
    : FarmException("FARM4212", "The coordinator stopped while the build ran. Submit it again.");
