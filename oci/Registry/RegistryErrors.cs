using System.Net;
using System.Security.Authentication;
using System.Text.Json;

namespace Farm.Oci.Registry;

/// <summary>What a request was for, so an error can say it in the user's terms.</summary>
internal enum TargetKind
{
    Registry,
    Manifest,
    Blob,
    Upload,
    Tags,
}

/// <summary>A request's purpose: the error message names it ("manifest 127.0.0.1:5100/farm/app:1.0").</summary>
internal sealed record RequestTarget(TargetKind Kind, string Registry, string? Repository, string Description, Digest? Digest = null);

/// <summary>
/// The one place that turns registry answers and transport failures into Farm exceptions. Error bodies follow
/// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes.
/// </summary>
internal static class RegistryErrors
{
    public static bool IsRetryable(HttpStatusCode status) =>
        status is HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway
            or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    /// <summary>Failures worth another attempt: dropped or refused connections, not TLS or protocol errors.</summary>
    public static bool IsTransient(HttpRequestException e) =>
        e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.ResponseEnded
            || (e.HttpRequestError == HttpRequestError.Unknown && e.InnerException is IOException);

    public static async Task<Exception> FromResponseAsync(HttpResponseMessage response, RequestTarget target, RegistryCredential? credential, int attempts, CancellationToken cancellationToken)
    {
        var status = response.StatusCode;
        var (codes, raw) = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        var text = Redact(raw, credential);
        var detail = text.Length > 0 ? $" The registry said: {text}." : string.Empty;
        var registry = target.Registry;
        return status switch
        {
            HttpStatusCode.Unauthorized when credential is null => new RegistryAuthenticationException(
                registry,
                $"Registry {registry} requires authentication for {target.Description}.{detail} Run `farm login {registry}` (or docker login), then try again."),
            HttpStatusCode.Unauthorized => new RegistryAuthenticationException(
                registry,
                $"Registry {registry} refused the credentials of user '{credential.Username}' for {target.Description}.{detail} Check the password and run `farm login {registry}` again."),
            HttpStatusCode.Forbidden => new RegistryAccessDeniedException(
                registry,
                $"Registry {registry} denied {target.Description} to {(credential is null ? "anonymous access" : $"user '{credential.Username}'")}.{detail} Ask the registry's administrator for access, or check the repository name."),
            HttpStatusCode.NotFound when target.Kind == TargetKind.Blob && target.Digest is { } digest =>
                new BlobNotFoundException(digest, $"{registry}/{target.Repository}"),
            HttpStatusCode.NotFound when target.Kind is TargetKind.Manifest or TargetKind.Tags => new ManifestNotFoundException(
                target.Description,
                $"{Capitalize(target.Description)} was not found.{detail} Check the repository name and the tag or digest."),
            _ when IsRetryable(status) => new RegistryUnavailableException(
                registry,
                $"Registry {registry} answered {(int)status} {response.ReasonPhrase} to {target.Description} after {attempts} attempt(s).{detail} It is overloaded or failing: try again later, or check the registry's logs.",
                status),
            _ => new RegistryRequestException(
                registry,
                $"Registry {registry} refused {target.Description} with {(int)status} {response.ReasonPhrase}.{detail} {Advice(codes)}",
                status,
                codes),
        };
    }

    public static Exception FromTransport(Exception e, RequestTarget target, Uri uri, RegistryHttp http, int attempts)
    {
        var registry = target.Registry;
        if (e is HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } || e.InnerException is AuthenticationException)
        {
            var why = http.LastCertificateProblem is { } problem ? $"its certificate is not trusted ({problem})" : $"the TLS handshake failed ({e.Message})";
            var ca = http.HasExtraRoots
                ? $"The CA certificates in {http.CaDirectory} did not verify it: check that ca.crt there is the registry's CA and that the certificate names {RegistryClientOptions.HostOf(registry)}."
                : $"Put the registry's CA certificate at {Path.Combine(http.CaDirectory, "ca.crt")}, or add {registry} to the insecure registries if it serves plain HTTP.";
            return new RegistryTlsException(registry, $"Cannot talk TLS to registry {registry} at {uri.GetLeftPart(UriPartial.Authority)}: {why}. {ca}", e);
        }

        if (e is TaskCanceledException or TimeoutException)
        {
            return new RegistryUnavailableException(registry, $"Registry {registry} did not answer {target.Description} in time ({uri.GetLeftPart(UriPartial.Path)}). Check the network, or raise the request timeout for slow links.", inner: e);
        }

        return new RegistryUnavailableException(
            registry,
            $"Cannot reach registry {registry} at {uri.GetLeftPart(UriPartial.Authority)} for {target.Description} after {attempts} attempt(s): {e.Message.TrimEnd('.')}. Check that the registry runs and the address is right.",
            inner: e);
    }

    private static string Advice(IReadOnlyList<string> codes) => (codes.Count > 0 ? codes[0] : null) switch
    {
        "DIGEST_INVALID" => "The registry found content that does not match its digest: for a blob, the local copy is corrupt (rebuild or pull it again); for a manifest, the registry misread a blob the manifest names, which happens while another client pushes that blob (push again).",
        "MANIFEST_BLOB_UNKNOWN" => "The manifest names a blob the repository lacks: push every layer and the config before the manifest.",
        "MANIFEST_INVALID" or "MANIFEST_UNVERIFIED" => "The manifest is malformed for this registry: check its media type and fields.",
        "NAME_INVALID" => "The repository name is not valid: use lower-case path components.",
        "TAG_INVALID" => "The tag is not valid: use letters, digits, '_', '.' and '-'.",
        "SIZE_INVALID" => "The size given does not match the content.",
        "BLOB_UPLOAD_INVALID" or "BLOB_UPLOAD_UNKNOWN" => "The upload session was lost (the registry may have restarted): push again.",
        "UNSUPPORTED" => "The registry does not support this operation (is deletion enabled?).",
        _ => "Check the request against the registry's documentation; this is likely a bug in Farm if the input was valid.",
    };

    /// <summary>
    /// The registry's words without the credential in any form a server could echo (a proxy's error page that quotes
    /// the request's headers): the message goes to logs, events and traces.
    /// </summary>
    internal static string Redact(string text, RegistryCredential? credential)
    {
        if (credential is null || text.Length == 0)
        {
            return text;
        }

        var basic = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}"));
        foreach (var secret in new[] { basic, basic.TrimEnd('='), credential.Password })
        {
            if (secret.Length > 0)
            {
                text = text.Replace(secret, "***", StringComparison.Ordinal);
            }
        }

        return text;
    }

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    private static async Task<(IReadOnlyList<string> Codes, string Text)> ReadErrorsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            // The status line is the error; an unreadable body only loses the registry's explanation.
            return ([], string.Empty);
        }

        if (body.Length > 4096)
        {
            body = body[..4096];
        }

        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
            {
                var codes = new List<string>();
                var messages = new List<string>();
                foreach (var error in errors.EnumerateArray())
                {
                    var code = error.TryGetProperty("code", out var c) ? c.GetString() ?? string.Empty : string.Empty;
                    var message = error.TryGetProperty("message", out var m) ? m.GetString() ?? string.Empty : string.Empty;
                    codes.Add(code);
                    messages.Add(code.Length > 0 ? $"{code} {message}".Trim() : message);
                }

                return (codes, string.Join("; ", messages));
            }
        }
        catch (JsonException)
        {
            // Not a distribution error document (a proxy's HTML page, plain text): quote it as it is.
        }

        return ([], body.Trim());
    }
}
