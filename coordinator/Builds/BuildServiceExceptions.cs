using Farm.Contracts;

namespace Farm.Coordinator.Builds;

/// <summary>FARM4210: no build with this id is known to the farm.</summary>
public sealed class BuildNotFoundException(Guid buildId)
    : FarmException(FarmErrorCodes.BuildNotFound, $"No build {buildId} is known to this farm. Check the id the submission returned; without Redis (embedded farm) builds are kept in memory and forgotten when the coordinator restarts.")
{
    public Guid BuildId { get; } = buildId;
}

/// <summary>FARM4211: a submission lacks what a build needs; the message names the field.</summary>
public sealed class InvalidSubmissionException(string message)
    : FarmException(FarmErrorCodes.InvalidSubmission, message);

/// <summary>FARM4212: the coordinator stopped while the build ran (in a cluster another coordinator carries it on).</summary>
public sealed class BuildAbandonedException()
    : FarmException(FarmErrorCodes.BuildAbandoned, "The coordinator stopped while the build ran. In a cluster with Redis another coordinator carries it on: ask it for the build's status; otherwise submit it again.");

/// <summary>FARM4213: the build could not be recorded in its build grain (the silo or its grain storage failed).</summary>
public sealed class BuildNotRecordedException(Exception inner)
    : FarmException(FarmErrorCodes.BuildNotRecorded, $"The build could not be recorded in the coordinator's grain storage: {inner.Message}. Check that Redis answers (infra/up.sh) and submit it again.", inner);

/// <summary>FARM4216: the build's grain cannot be reached now (a silo died and is not declared dead yet, or Redis is down).</summary>
public sealed class ClusterUnavailableException(Guid buildId, Exception inner)
    : FarmException(FarmErrorCodes.ClusterUnavailable, $"The state of build {buildId} cannot be reached right now: {inner.Message}. A coordinator that died is declared dead within seconds and Redis faults are reported by /healthz; ask again shortly.", inner)
{
    public Guid BuildId { get; } = buildId;
}

/// <summary>FARM4214: a submission names a context directory or an output path, which only the local farm reads or writes.</summary>
public sealed class LocalOnlySubmissionException(string field)
    : FarmException(FarmErrorCodes.LocalOnlySubmission, $"The submission sets \"{field}\", a path on the farm's own machine: only the local farm (farm build without --farm) accepts it. Upload the context to the farm's cache store and set \"contextDigest\" instead, and push the image rather than exporting it.");

/// <summary>FARM4215: the build was cancelled by its submitter (Ctrl-C in <c>farm build</c>, or <c>POST /builds/{id}/cancel</c>).</summary>
public sealed class BuildCancelledException()
    : FarmException(FarmErrorCodes.BuildCancelled, "The build was cancelled: its jobs were stopped and no image was named or pushed.");
