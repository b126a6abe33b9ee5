using Farm.Contracts;

namespace Farm.Coordinator.Auth;

/// <summary>FARM4230: the request has no bearer token, or one the coordinator does not know (HTTP 401).</summary>
public sealed class UnauthenticatedException()
    : FarmException(FarmErrorCodes.Unauthenticated, "This coordinator requires a bearer token: send 'Authorization: Bearer TOKEN' (the farm CLI sends $FARM_TOKEN or --token-file) with a token its operator minted (farm-coordinator token create --tenant NAME).");

/// <summary>FARM4231: the token's role does not allow the request (HTTP 403).</summary>
public sealed class NotPermittedException(string role, string what)
    : FarmException(FarmErrorCodes.NotPermitted, $"A '{role}' token may not {what}: ask the farm's operator for a 'build' token of your tenant.");

/// <summary>FARM4232: the coordinator's auth or TLS settings are unusable, or would expose the API without auth; it does not start.</summary>
public sealed class AuthSettingsException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.AuthSettings, message, inner);

/// <summary>FARM4233: a queued submission whose publisher maps to no tenant never becomes a build.</summary>
public sealed class SubmissionNotAuthorizedException(string reason)
    : FarmException(FarmErrorCodes.SubmissionNotAuthorized, $"A queued SubmitBuild was refused: {reason}. Publish as a RabbitMQ user listed as 'TENANT amqp:USER' in the coordinator's tokens file, with the message's user_id property set to that user (RabbitMQ checks it against the connection).");

/// <summary>
/// FARM4240: a registry refused a push or base-image pull of a tenant's build (or one with credentials passed for it);
/// the message says which credentials were used and what to configure, and never holds a secret.
/// </summary>
public sealed class TenantRegistryRefusedException(string registry, string message, Exception inner)
    : FarmException(FarmErrorCodes.TenantRegistryRefused, message, inner)
{
    public string Registry { get; } = registry;
}

/// <summary>FARM4241: a build's passed registry credentials stayed with the coordinator that accepted it, and this one resumed it.</summary>
public sealed class PushCredentialsLostException(Guid buildId, IReadOnlyList<string> registries)
    : FarmException(
        FarmErrorCodes.PushCredentialsLost,
        $"Build {buildId} was submitted with registry credentials for {string.Join(", ", registries)}, which Farm keeps only in the memory of the coordinator that accepted the build; " +
        "that coordinator stopped and this one resumed the build without them, and will not push with any others. Submit the build again (its layers are cached).")
{
    public Guid BuildId { get; } = buildId;
}

/// <summary>FARM4242: the registry credentials passed with a submission are unusable (HTTP 400); the message never repeats them.</summary>
public sealed class InvalidPushCredentialsException(string reason)
    : FarmException(FarmErrorCodes.InvalidPushCredentials, $"The registry credentials passed with the build (header {PushCredentials.Header}) cannot be used: {reason}. Pass credentials only for the registries the build's tags push to, as farm build --push does.");

/// <summary>FARM4243: a tenant's registry auth file is unusable; the coordinator does not start.</summary>
public sealed class TenantRegistrySettingsException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.TenantRegistrySettings, message, inner);

/// <summary>FARM4275: a request that changes the whole farm (pruning its build cache) needs an <c>admin</c> token (HTTP 403).</summary>
public sealed class AdminRequiredException(string role, string what)
    : FarmException(FarmErrorCodes.AdminRequired, $"A '{role}' token may not {what}: it affects every tenant of the farm, so it needs an 'admin' token (farm-coordinator token create --tenant NAME --role admin). Ask the farm's operator.");

/// <summary>
/// FARM4310: secrets or SSH agents were passed with a build to the coordinator that accepted it, which keeps them in
/// memory only; another coordinator resumed the build without them and will not run its steps without them.
/// </summary>
public sealed class BuildSecretsLostException(Guid buildId, IReadOnlyList<string> ids)
    : FarmException(
        FarmErrorCodes.BuildSecretsLost,
        $"Build {buildId} was submitted with the secrets or ssh agents {string.Join(", ", ids)}, which Farm keeps only in the memory of the coordinator that accepted the build; " +
        "that coordinator stopped and this one resumed the build without them. Submit the build again (its layers are cached).")
{
    public Guid BuildId { get; } = buildId;
}

/// <summary>FARM4312: the secrets passed with a submission are unusable (HTTP 400); the message never repeats them.</summary>
public sealed class InvalidBuildSecretsException(string reason)
    : FarmException(FarmErrorCodes.InvalidBuildSecrets, $"The secrets passed with the build (header {BuildSecretsHeader.Name}) cannot be used: {reason}. Pass them with farm build --secret id=ID,src=FILE (or env=VAR) and --ssh.");

/// <summary>
/// FARM4340: a worker's job credential for a build's secrets was refused (HTTP 403): unknown, minted for another build,
/// or its job has ended. One message for every reason, so that the answer tells nothing about other builds.
/// </summary>
public sealed class JobCredentialRefusedException(Guid buildId)
    : FarmException(
        FarmErrorCodes.JobCredentialRefused,
        $"The job credential does not give access to the secrets of build {buildId}: it is unknown here, its job has ended, or it was minted for another build. " +
        "A worker fetches a build's secrets only while the job it received for that build runs, from the coordinator that accepted the build.");
