using System.Net;
using Farm.Contracts;

namespace Farm.Oci.Registry;

/// <summary>An image reference could not be parsed.</summary>
public sealed class InvalidImageReferenceException(string reference, string reason)
    : FarmException(FarmErrorCodes.InvalidImageReference, $"'{reference}' is not a valid image reference: {reason}. Expected [registry/]repository[:tag][@digest], e.g. 127.0.0.1:5100/farm/app:1.0.")
{
    public string Reference { get; } = reference;
}

/// <summary>A push destination is not a usable <c>host[:port]/repository[:tag]</c> reference (FARM4110).</summary>
/// <remarks>The code dates from when only the coordinator pushed; it stays, as codes are stable.</remarks>
public sealed class InvalidPushTargetException(string target, string reason)
    : FarmException(FarmErrorCodes.InvalidPushTarget, $"'{target}' cannot be pushed to: {reason}. Give a tag such as 127.0.0.1:5100/team/app:1.0.")
{
    public string Target { get; } = target;
}

/// <summary>The registry wants credentials that were not given, or refused the ones that were (HTTP 401).</summary>
public sealed class RegistryAuthenticationException(string registry, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.RegistryAuthentication, message, inner)
{
    public string Registry { get; } = registry;
}

/// <summary>The credentials were accepted but do not allow the operation (HTTP 403, or a token without the scope).</summary>
public sealed class RegistryAccessDeniedException(string registry, string message)
    : FarmException(FarmErrorCodes.RegistryAccessDenied, message)
{
    public string Registry { get; } = registry;
}

/// <summary>The manifest, tag or repository does not exist (HTTP 404).</summary>
public sealed class ManifestNotFoundException(string reference, string message)
    : FarmException(FarmErrorCodes.ManifestNotFound, message)
{
    public string Reference { get; } = reference;
}

/// <summary>The registry could not be reached, or answered 429/5xx after every retry.</summary>
public sealed class RegistryUnavailableException(string registry, string message, HttpStatusCode? status = null, Exception? inner = null)
    : FarmException(FarmErrorCodes.RegistryUnavailable, message, inner)
{
    public string Registry { get; } = registry;

    /// <summary>The last HTTP status, or null when no response came.</summary>
    public HttpStatusCode? Status { get; } = status;
}

/// <summary>The registry answered a request with an error Farm cannot recover from (other 4xx, or a malformed answer).</summary>
public sealed class RegistryRequestException(string registry, string message, HttpStatusCode? status = null, IReadOnlyList<string>? errorCodes = null)
    : FarmException(FarmErrorCodes.RegistryRequest, message)
{
    public string Registry { get; } = registry;

    public HttpStatusCode? Status { get; } = status;

    /// <summary>The distribution error codes from the body (<c>MANIFEST_INVALID</c>, <c>BLOB_UPLOAD_INVALID</c>, ...).</summary>
    public IReadOnlyList<string> ErrorCodes { get; } = errorCodes ?? [];
}

/// <summary>The registry's TLS certificate is not trusted, or the TLS handshake failed.</summary>
public sealed class RegistryTlsException(string registry, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.RegistryTls, message, inner)
{
    public string Registry { get; } = registry;
}

/// <summary>The token server named by a registry's Bearer challenge failed or answered nonsense.</summary>
public sealed class RegistryTokenException(string registry, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.RegistryToken, message, inner)
{
    public string Registry { get; } = registry;
}

/// <summary>The Docker client configuration (config.json) could not be read or written.</summary>
public sealed class DockerConfigException(string path, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.DockerConfig, message, inner)
{
    public string Path { get; } = path;
}

/// <summary>An image index has no manifest for the platform Farm needs.</summary>
public sealed class PlatformNotFoundException(string reference, Platform platform, IReadOnlyList<string> available)
    : FarmException(FarmErrorCodes.PlatformNotFound, $"{reference} has no image for {platform}; it has {(available.Count == 0 ? "no platform entries" : string.Join(", ", available))}. Use an image built for {platform}.")
{
    public string Reference { get; } = reference;
}
