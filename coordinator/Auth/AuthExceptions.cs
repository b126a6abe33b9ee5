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
