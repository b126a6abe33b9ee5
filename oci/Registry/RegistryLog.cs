using Microsoft.Extensions.Logging;

namespace Farm.Oci.Registry;

/// <summary>Log messages of the registry client. None of them may carry a credential or a token.</summary>
internal static partial class RegistryLog
{
    [LoggerMessage(EventId = 2200, Level = LogLevel.Debug, Message = "Registry {Registry} answers at {BaseUri} (auth: {AuthScheme})")]
    public static partial void EndpointResolved(this ILogger logger, string registry, Uri baseUri, string authScheme);

    [LoggerMessage(EventId = 2201, Level = LogLevel.Debug, Message = "Got a token for {Registry} scope '{Scope}', valid for {Lifetime}")]
    public static partial void TokenIssued(this ILogger logger, string registry, string scope, TimeSpan lifetime);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "{Method} {Uri} failed ({Reason}); retry {Attempt} of {MaxRetries} in {Delay}")]
    public static partial void Retrying(this ILogger logger, HttpMethod method, Uri uri, string reason, int attempt, int maxRetries, TimeSpan delay);

    [LoggerMessage(EventId = 2203, Level = LogLevel.Debug, Message = "Blob {Digest} already in {Repository}")]
    public static partial void BlobExists(this ILogger logger, Digest digest, string repository);

    [LoggerMessage(EventId = 2204, Level = LogLevel.Debug, Message = "Blob {Digest} mounted into {Repository} from {From}")]
    public static partial void BlobMounted(this ILogger logger, Digest digest, string repository, string from);

    [LoggerMessage(EventId = 2205, Level = LogLevel.Debug, Message = "Blob {Digest} ({Size} bytes) uploaded to {Repository} in {Chunks} request(s)")]
    public static partial void BlobUploaded(this ILogger logger, Digest digest, long size, string repository, int chunks);

    [LoggerMessage(EventId = 2206, Level = LogLevel.Debug, Message = "Manifest {Digest} ({MediaType}) pushed to {Repository}:{Reference}")]
    public static partial void ManifestPushed(this ILogger logger, Digest digest, string mediaType, string repository, string reference);

    [LoggerMessage(EventId = 2207, Level = LogLevel.Warning, Message = "Could not cancel upload {Location} after a failed blob push; the registry purges it later")]
    public static partial void UploadCancelFailed(this ILogger logger, Exception exception, Uri location);
}
