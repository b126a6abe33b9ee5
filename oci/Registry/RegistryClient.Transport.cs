using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Farm.Oci.Registry;

/// <summary>Endpoint discovery, authentication and retries: everything between an operation and the wire.</summary>
public sealed partial class RegistryClient
{
    private readonly SemaphoreSlim _endpointLock = new(1, 1);
    private readonly ConcurrentDictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);
    private Uri? _baseUri;
    private volatile AuthChallenge? _challenge;
    private RegistryCredential? _credential;

    /// <summary>A request: builds a fresh message per attempt, since an HttpRequestMessage can be sent once.</summary>
    private sealed record RequestSpec(
        Func<Uri, HttpRequestMessage> Create,
        RequestTarget Target,
        IReadOnlyList<string> Scopes,
        HttpCompletionOption Completion = HttpCompletionOption.ResponseContentRead,
        bool RetryDroppedConnections = true);

    private sealed record CachedToken(string Token, DateTimeOffset RefreshAfter);

    /// <summary>A registry's answer and how many attempts it took, for the error message.</summary>
    private readonly record struct Answer(HttpResponseMessage Response, int Attempts);

    private async Task<Uri> EnsureEndpointAsync(CancellationToken cancellationToken)
    {
        if (_baseUri is { } known)
        {
            return known;
        }

        await _endpointLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_baseUri is { } raced)
            {
                return raced;
            }

            _credential = await _credentials.GetCredentialAsync(Registry, cancellationToken).ConfigureAwait(false);
            var host = Registry == ImageReference.DockerHub ? "registry-1.docker.io" : Registry;
            var target = new RequestTarget(TargetKind.Registry, Registry, null, $"the API check of {Registry} (/v2/)");
            var https = new Uri($"https://{host}/");
            var insecure = _options.IsInsecure(Registry);
            Answer answer;
            Uri chosen;
            try
            {
                // Where plain HTTP is the fallback, a dropped TLS connection goes straight to it: that is its retry.
                answer = await ProbeAsync(https, target, retryDroppedConnections: !insecure, cancellationToken).ConfigureAwait(false);
                chosen = https;
            }
            catch (Farm.Contracts.FarmException e) when (insecure && _http.LastCertificateProblem is null
                && e.InnerException is HttpRequestException { HttpRequestError: not HttpRequestError.NameResolutionError })
            {
                // Docker's rule for insecure registries: TLS first, plain HTTP when the server does not speak TLS.
                // An untrusted certificate is not a reason to fall back: that would hide a misconfigured CA.
                var http = new Uri($"http://{host}/");
                answer = await ProbeAsync(http, target, retryDroppedConnections: true, cancellationToken).ConfigureAwait(false);
                chosen = http;
            }

            using (var response = answer.Response)
            {
                if (response.StatusCode == HttpStatusCode.Unauthorized)
                {
                    var challenges = AuthChallenge.FromResponse(response);
                    _challenge = challenges.Count > 0 ? challenges[0] : null;
                }
                else if (!response.IsSuccessStatusCode)
                {
                    throw await RegistryErrors.FromResponseAsync(response, target, _credential, answer.Attempts, cancellationToken).ConfigureAwait(false);
                }
            }

            _logger.EndpointResolved(Registry, chosen, _challenge?.Scheme ?? "none");
            _baseUri = chosen;
            return chosen;
        }
        finally
        {
            _endpointLock.Release();
        }
    }

    /// <summary>The API check (<c>GET /v2/</c>), with the retries every request gets: a 503 or a reset here is as passing as anywhere.</summary>
    private Task<Answer> ProbeAsync(Uri baseUri, RequestTarget target, bool retryDroppedConnections, CancellationToken cancellationToken) =>
        SendWithRetriesAsync(
            () => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, "v2/"))),
            target,
            HttpCompletionOption.ResponseContentRead,
            retryDroppedConnections,
            cancellationToken);

    /// <summary>
    /// The one retry policy of every request to a registry or its token server: 429 and 5xx answers, and (when
    /// <paramref name="retryDroppedConnections"/>) dropped or refused connections, are tried again with exponential
    /// back-off, up to <see cref="RegistryClientOptions.MaxRetries"/> times. Returns the last answer, successful or
    /// not, with the number of attempts it took; a transport failure that is not retried becomes a Farm exception.
    /// </summary>
    /// <param name="create">Makes the request of one attempt (an HttpRequestMessage can be sent only once).</param>
    /// <param name="target">What the request is for, for error messages.</param>
    /// <param name="completion">When the answer counts as received.</param>
    /// <param name="retryDroppedConnections">False for requests a dropped connection may have half-applied (a PATCH).</param>
    /// <param name="cancellationToken">Cancels the request and the back-off.</param>
    private async Task<Answer> SendWithRetriesAsync(
        Func<Task<HttpRequestMessage>> create,
        RequestTarget target,
        HttpCompletionOption completion,
        bool retryDroppedConnections,
        CancellationToken cancellationToken)
    {
        var retries = 0;
        while (true)
        {
            using var request = await create().ConfigureAwait(false);
            HttpResponseMessage response;
            try
            {
                response = await _http.Client.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (retryDroppedConnections && retries < _options.MaxRetries && RegistryErrors.IsTransient(e))
            {
                retries++;
                var delay = Backoff(retries, null);
                _logger.Retrying(request.Method, StripQuery(request.RequestUri!), e.HttpRequestError.ToString(), retries, _options.MaxRetries, delay);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                continue;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw RegistryErrors.FromTransport(e, target, request.RequestUri!, _http, retries + 1);
            }

            if (RegistryErrors.IsRetryable(response.StatusCode) && retries < _options.MaxRetries)
            {
                retries++;
                var delay = Backoff(retries, response.Headers.RetryAfter);
                _logger.Retrying(request.Method, StripQuery(request.RequestUri!), ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture), retries, _options.MaxRetries, delay);
                response.Dispose();
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                continue;
            }

            return new Answer(response, retries + 1);
        }
    }

    /// <summary>
    /// Sends a request with authentication, answering one 401 challenge, with the retries of
    /// <see cref="SendWithRetriesAsync"/>. Returns any other response, successful or not.
    /// </summary>
    private async Task<Answer> SendRawAsync(RequestSpec spec, CancellationToken cancellationToken)
    {
        var baseUri = await EnsureEndpointAsync(cancellationToken).ConfigureAwait(false);
        var challenged = false;
        var attempts = 0;
        while (true)
        {
            var answer = await SendWithRetriesAsync(
                async () =>
                {
                    var request = spec.Create(baseUri);
                    await AuthorizeAsync(request, spec.Scopes, cancellationToken).ConfigureAwait(false);
                    return request;
                },
                spec.Target,
                spec.Completion,
                spec.RetryDroppedConnections,
                cancellationToken).ConfigureAwait(false);
            attempts += answer.Attempts;
            var response = answer.Response;
            if (response.StatusCode == HttpStatusCode.Unauthorized && !challenged)
            {
                challenged = true;
                var challenges = AuthChallenge.FromResponse(response);
                if (await TryAnswerChallengeAsync(challenges, spec, cancellationToken).ConfigureAwait(false))
                {
                    response.Dispose();
                    continue;
                }
            }

            return answer with { Attempts = attempts };
        }
    }

    /// <summary>Sends, and turns any unsuccessful answer into the matching Farm exception.</summary>
    private async Task<HttpResponseMessage> SendAsync(RequestSpec spec, CancellationToken cancellationToken, params HttpStatusCode[] accepted)
    {
        var (response, attempts) = await SendRawAsync(spec, cancellationToken).ConfigureAwait(false);
        if (accepted.Length == 0 ? response.IsSuccessStatusCode : accepted.Contains(response.StatusCode))
        {
            return response;
        }

        using (response)
        {
            throw await RegistryErrors.FromResponseAsync(response, spec.Target, _credential, attempts, cancellationToken).ConfigureAwait(false);
        }
    }

    private TimeSpan Backoff(int retry, RetryConditionHeaderValue? retryAfter)
    {
        if (retryAfter?.Delta is { } delta)
        {
            return delta < _options.MaxRetryDelay ? delta : _options.MaxRetryDelay;
        }

        var exponential = _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, retry - 1);
        var jittered = exponential * (0.5 + (Random.Shared.NextDouble() / 2));
        return TimeSpan.FromMilliseconds(Math.Min(jittered, _options.MaxRetryDelay.TotalMilliseconds));
    }

    private async Task AuthorizeAsync(HttpRequestMessage request, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
    {
        var challenge = _challenge;
        if (challenge is null)
        {
            return;
        }

        if (challenge.IsBasic && _credential is { } credential)
        {
            request.Headers.Authorization = BasicHeader(credential);
        }
        else if (challenge.IsBearer)
        {
            // Asking for the token up front saves the 401 round trip on every request after the first.
            var token = await GetTokenAsync(challenge, scopes, forceRefresh: false, cancellationToken).ConfigureAwait(false);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    private async Task<bool> TryAnswerChallengeAsync(IReadOnlyList<AuthChallenge> challenges, RequestSpec spec, CancellationToken cancellationToken)
    {
        var challenge = challenges.FirstOrDefault(c => c.IsBearer || c.IsBasic);
        if (challenge is null)
        {
            return false;
        }

        var previous = _challenge;
        _challenge = challenge;
        if (challenge.IsBasic)
        {
            // Retrying only helps when the credentials were not sent yet.
            return _credential is not null && previous?.IsBasic != true;
        }

        // A 401 despite a token: the token expired early or lacks a scope the registry now names.
        var scopes = challenge.Scope is { Length: > 0 } asked ? spec.Scopes.Union(asked.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList() : spec.Scopes;
        await GetTokenAsync(challenge, scopes, forceRefresh: true, cancellationToken).ConfigureAwait(false);
        if (!scopes.SequenceEqual(spec.Scopes))
        {
            _tokens[ScopeKey(spec.Scopes)] = _tokens[ScopeKey(scopes)];
        }

        return true;
    }

    private static string ScopeKey(IReadOnlyList<string> scopes) => string.Join(' ', scopes.Order(StringComparer.Ordinal));

    /// <summary>
    /// A token for exactly these scopes, from the cache until shortly before it expires, else from the realm
    /// (https://distribution.github.io/distribution/spec/auth/token/#requesting-a-token): GET with basic
    /// credentials when Farm has them, anonymously otherwise.
    /// </summary>
    private async Task<string> GetTokenAsync(AuthChallenge challenge, IReadOnlyList<string> scopes, bool forceRefresh, CancellationToken cancellationToken)
    {
        var key = ScopeKey(scopes);
        if (!forceRefresh && _tokens.TryGetValue(key, out var cached) && cached.RefreshAfter > _time.GetUtcNow())
        {
            return cached.Token;
        }

        if (challenge.Realm is not { Length: > 0 } realm || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri))
        {
            throw new RegistryTokenException(Registry, $"Registry {Registry} asked for a Bearer token without a usable realm ('{challenge.Realm}'). The registry's auth configuration is broken; tell its administrator.");
        }

        var query = new StringBuilder();
        if (challenge.Service is { Length: > 0 } service)
        {
            query.Append("service=").Append(Uri.EscapeDataString(service));
        }

        foreach (var scope in scopes)
        {
            query.Append(query.Length > 0 ? "&" : string.Empty).Append("scope=").Append(Uri.EscapeDataString(scope));
        }

        var builder = new UriBuilder(realmUri);
        var existing = builder.Query.TrimStart('?');
        builder.Query = existing.Length > 0 ? $"{existing}&{query}" : query.ToString();
        var target = new RequestTarget(TargetKind.Registry, Registry, null, $"a token from {realmUri.GetLeftPart(UriPartial.Path)}");

        var (response, attempts) = await SendTokenRequestAsync(builder.Uri, target, cancellationToken).ConfigureAwait(false);
        using var answered = response;
        if (!response.IsSuccessStatusCode)
        {
            throw await RegistryErrors.FromResponseAsync(response, target, _credential, attempts, cancellationToken).ConfigureAwait(false);
        }

        var (token, lifetime) = await ParseTokenAsync(response, cancellationToken).ConfigureAwait(false);
        // Refresh a little early so a token never expires between the cache check and the registry's check.
        var margin = TimeSpan.FromSeconds(Math.Min(30, lifetime.TotalSeconds / 10));
        _tokens[key] = new CachedToken(token, _time.GetUtcNow() + lifetime - margin);
        _logger.TokenIssued(Registry, key, lifetime);
        return token;
    }

    private Task<Answer> SendTokenRequestAsync(Uri uri, RequestTarget target, CancellationToken cancellationToken) =>
        SendWithRetriesAsync(
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, uri);
                if (_credential is { } credential)
                {
                    request.Headers.Authorization = BasicHeader(credential);
                }

                return Task.FromResult(request);
            },
            target,
            HttpCompletionOption.ResponseContentRead,
            retryDroppedConnections: true,
            cancellationToken);

    private async Task<(string Token, TimeSpan Lifetime)> ParseTokenAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            // "token" is the registry spec's field; "access_token" is the OAuth2 name some servers send instead.
            var token = root.TryGetProperty("token", out var t) && t.GetString() is { Length: > 0 } s ? s
                : root.TryGetProperty("access_token", out var a) && a.GetString() is { Length: > 0 } s2 ? s2
                : null;
            if (token is null)
            {
                throw new RegistryTokenException(Registry, $"The token server of {Registry} answered without a token. Check the registry's token service.");
            }

            // The spec's default lifetime when expires_in is absent is 60 seconds.
            var seconds = root.TryGetProperty("expires_in", out var e) && e.TryGetInt32(out var n) && n > 0 ? n : 60;
            return (token, TimeSpan.FromSeconds(seconds));
        }
        catch (JsonException e)
        {
            throw new RegistryTokenException(Registry, $"The token server of {Registry} answered with invalid JSON ({e.Message}). Check the registry's token service.", e);
        }
    }

    private static AuthenticationHeaderValue BasicHeader(RegistryCredential credential) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credential.Username}:{credential.Password}")));

    /// <summary>Upload URLs carry server state in the query; logs need only the path.</summary>
    private static Uri StripQuery(Uri uri) => new(uri.GetLeftPart(UriPartial.Path));
}
