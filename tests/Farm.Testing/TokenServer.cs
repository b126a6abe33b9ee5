using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Testing;

/// <summary>One token request as the server saw it.</summary>
public sealed record TokenRequest(string? User, string? Service, IReadOnlyList<string> Scopes, IReadOnlyList<string> Granted);

/// <summary>
/// A distribution token server for the token-auth test registry: answers GET /token on 127.0.0.1:5109 with RS256
/// JWTs signed by the key infra/registry.sh generated, with the signing certificate in the <c>x5c</c> header (the
/// registry trusts it through its rootcertbundle). User farm/farm-secret gets what it asks for; anonymous callers
/// get pull only; a wrong password gets 401. Every request is recorded so tests can check scopes.
/// </summary>
/// <remarks>https://distribution.github.io/distribution/spec/auth/jwt/</remarks>
public sealed class TokenServer : IDisposable
{
    private static readonly Lazy<TokenServer> Shared = new(() => new TokenServer(TestRegistries.TokenServerPrefix));

    private readonly HttpListener _listener = new();
    private readonly RSA _key;
    private readonly string _x5c;
    private readonly ConcurrentQueue<TokenRequest> _requests = new();
    private readonly CancellationTokenSource _stop = new();

    private TokenServer(string prefix)
    {
        if (!File.Exists(TestRegistries.TokenSigningKey))
        {
            throw new InvalidOperationException(
                $"The token signing key {TestRegistries.TokenSigningKey} is missing: start the registries with infra/up.sh (or infra/registry.sh start).");
        }

        _key = RSA.Create();
        _key.ImportFromPem(File.ReadAllText(TestRegistries.TokenSigningKey));
        using var cert = X509CertificateLoader.LoadCertificateFromFile(TestRegistries.TokenSigningCertificate);
        _x5c = Convert.ToBase64String(cert.RawData);
        _listener.Prefixes.Add(prefix);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    /// <summary>The process-wide server (the registry's realm names one fixed port).</summary>
    public static TokenServer Instance => Shared.Value;

    /// <summary>Lifetime of issued tokens.</summary>
    public int ExpiresInSeconds { get; set; } = 300;

    public IReadOnlyList<TokenRequest> Requests => [.. _requests];

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        _key.Dispose();
        _stop.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            try
            {
                Handle(context);
            }
            catch (Exception e)
            {
                context.Response.StatusCode = 500;
                var body = Encoding.UTF8.GetBytes(e.ToString());
                context.Response.OutputStream.Write(body);
            }
            finally
            {
                context.Response.Close();
            }
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var query = context.Request.QueryString;
        var scopes = query.GetValues("scope")?.SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList() ?? [];
        string? user = null;
        var header = context.Request.Headers["Authorization"];
        if (header is not null && header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            if (pair != $"{TestRegistries.BasicUser}:{TestRegistries.BasicPassword}")
            {
                _requests.Enqueue(new TokenRequest(pair.Split(':')[0], query["service"], scopes, []));
                context.Response.StatusCode = 401;
                context.Response.AddHeader("WWW-Authenticate", "Basic realm=\"farm-token\"");
                return;
            }

            user = TestRegistries.BasicUser;
        }

        var access = new JsonArray();
        var granted = new List<string>();
        foreach (var scope in scopes)
        {
            var first = scope.IndexOf(':', StringComparison.Ordinal);
            var last = scope.LastIndexOf(':');
            if (first < 0 || last <= first)
            {
                continue;
            }

            var actions = scope[(last + 1)..].Split(',').Where(a => user is not null || a == "pull").ToArray();
            access.Add(new JsonObject
            {
                ["type"] = scope[..first],
                ["name"] = scope[(first + 1)..last],
                ["actions"] = new JsonArray([.. actions.Select(a => (JsonNode?)JsonValue.Create(a))]),
            });
            granted.Add($"{scope[..last]}:{string.Join(',', actions)}");
        }

        _requests.Enqueue(new TokenRequest(user, query["service"], scopes, granted));
        var token = Sign(user ?? string.Empty, access);
        var now = DateTimeOffset.UtcNow;
        var response = new JsonObject
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = ExpiresInSeconds,
            ["issued_at"] = now.ToString("o", System.Globalization.CultureInfo.InvariantCulture),
        };
        var bytes = Encoding.UTF8.GetBytes(response.ToJsonString());
        context.Response.ContentType = "application/json";
        context.Response.ContentLength64 = bytes.Length;
        context.Response.OutputStream.Write(bytes);
    }

    private string Sign(string subject, JsonArray access)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "RS256", ["x5c"] = new JsonArray(_x5c) };
        var claims = new JsonObject
        {
            ["iss"] = TestRegistries.TokenIssuer,
            ["sub"] = subject,
            ["aud"] = TestRegistries.TokenService,
            ["exp"] = now + ExpiresInSeconds,
            ["nbf"] = now - 5,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        };
        var signingInput = $"{Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString()))}.{Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()))}";
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{signingInput}.{Base64Url(signature)}";
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
