using Farm.Contracts;

namespace Farm.Cli;

/// <summary>A flag or argument of a farm command is wrong (FARM5010).</summary>
public sealed class InvalidCliArgumentException(string message)
    : FarmException(FarmErrorCodes.InvalidCliArgument, message);

/// <summary>The Dockerfile cannot be read (FARM5012).</summary>
public sealed class DockerfileUnreadableException(string path, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.DockerfileUnreadable, $"cannot read the Dockerfile {path}: {reason}. Pass an existing file with -f, or put a Dockerfile in the context.", inner);

/// <summary>The remote farm's HTTP API failed or answered something unexpected (FARM5013).</summary>
public sealed class RemoteFarmException(string url, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.RemoteFarm, $"the farm at {url} {reason}. Check that the coordinator runs (infra/cluster.sh status) and that --farm / FARM_HOST names its HTTP address, e.g. http://127.0.0.1:8480.", inner);

/// <summary>No build has this id, on the farm asked (FARM5014).</summary>
public sealed class NoSuchBuildException(string id, string where)
    : FarmException(FarmErrorCodes.NoSuchBuild, $"no build with id {id} on {where}. Build ids are the GUIDs farm submit prints; the farm forgets builds when it restarts.");

/// <summary>Publishing to RabbitMQ failed (FARM5016).</summary>
public sealed class SubmitFailedException(string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.SubmitFailed, $"the build could not be submitted to RabbitMQ: {reason}. Check FARM_RABBITMQ (amqp://USER:PASS@HOST:PORT/VHOST) and that RabbitMQ runs (infra/up.sh).", inner);

/// <summary>A <c>--secret</c> or <c>--ssh</c> value is malformed, or what it names cannot be read (FARM5090); never quotes a secret.</summary>
public sealed class InvalidSecretFlagException(string message)
    : FarmException(FarmErrorCodes.InvalidSecretFlag, message);

/// <summary>Secrets or an SSH agent would go where they must not: over plain HTTP beyond loopback, to a remote farm, or into a queue message (FARM5091).</summary>
public sealed class SecretsRefusedException(string message)
    : FarmException(FarmErrorCodes.SecretsRefused, message);
