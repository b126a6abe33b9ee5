using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Farm.Testing;

/// <summary>
/// The four distribution registries infra/registry.sh starts, located through environment variables with the
/// script's defaults. Tests call <see cref="EnsureAnsweringAsync"/> first: a registry that does not answer fails
/// the test with the command that starts it. Nothing is skipped.
/// </summary>
public static class TestRegistries
{
    /// <summary>No authentication (FARM_REGISTRY, default 127.0.0.1:5100).</summary>
    public static string Anonymous => Env("FARM_REGISTRY", "127.0.0.1:5100");

    /// <summary>htpasswd basic auth, user <see cref="BasicUser"/> (FARM_REGISTRY_BASIC, default 127.0.0.1:5101).</summary>
    public static string Basic => Env("FARM_REGISTRY_BASIC", "127.0.0.1:5101");

    /// <summary>Token auth against the in-test token server (FARM_REGISTRY_TOKEN, default 127.0.0.1:5102).</summary>
    public static string Token => Env("FARM_REGISTRY_TOKEN", "127.0.0.1:5102");

    /// <summary>TLS with the test CA (FARM_REGISTRY_TLS, default 127.0.0.1:5103).</summary>
    public static string Tls => Env("FARM_REGISTRY_TLS", "127.0.0.1:5103");

    public const string BasicUser = "farm";

    public const string BasicPassword = "farm-secret";

    /// <summary>Where the token registry's realm points; fixed in its config by infra/registry.sh.</summary>
    public const string TokenServerPrefix = "http://127.0.0.1:5109/";

    public const string TokenService = "farm-registry";

    public const string TokenIssuer = "farm-test-issuer";

    /// <summary>FARM_INFRA_DIR, default /var/tmp/farm-infra.</summary>
    public static string InfraDir => Env("FARM_INFRA_DIR", "/var/tmp/farm-infra");

    public static string StateDir => Path.Combine(InfraDir, "registry");

    /// <summary>The certs.d-style directory with the test CA for the TLS registry.</summary>
    public static string CertsDirectory => Path.Combine(StateDir, "certs.d");

    public static string TlsCaFile => Path.Combine(StateDir, "tls", "ca.crt");

    public static string TokenSigningKey => Path.Combine(StateDir, "token-signing", "signing.key");

    public static string TokenSigningCertificate => Path.Combine(StateDir, "token-signing", "signing.crt");

    /// <summary>The filesystem storage root of the registry at <paramref name="address"/>, for tests that corrupt a blob.</summary>
    public static string StorageDir(string address) =>
        address == Anonymous ? Path.Combine(StateDir, "anon", "storage")
        : address == Basic ? Path.Combine(StateDir, "basic", "storage")
        : address == Token ? Path.Combine(StateDir, "token", "storage")
        : address == Tls ? Path.Combine(StateDir, "tls", "storage")
        : throw new ArgumentException($"{address} is not one of the test registries.", nameof(address));

    /// <summary>Waits until the registry answers <c>/v2/</c> (a 401 counts), or fails saying how to start it.</summary>
    public static async Task EnsureAnsweringAsync(string address, bool tls = false, TimeSpan? timeout = null)
    {
        using var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2) };
        if (tls)
        {
            var ca = File.Exists(TlsCaFile) ? X509CertificateLoader.LoadCertificateFromFile(TlsCaFile) : null;
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, errors) => errors == SslPolicyErrors.None || (ca is not null && cert is not null && TrustedBy(ca, cert)),
            };
        }

        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(3) };
        var uri = new Uri($"{(tls ? "https" : "http")}://{address}/v2/");
        string? last = null;
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    using var response = await client.GetAsync(uri).ConfigureAwait(false);
                    last = $"it answered {(int)response.StatusCode}";
                    return response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    last = e.Message;
                    return false;
                }
            },
            timeout ?? TimeSpan.FromSeconds(15),
            () => $"the registry at {address} to answer, but it is not answering ({last}): start it with infra/up.sh (or infra/registry.sh start). State and logs are under {StateDir}.").ConfigureAwait(false);
    }

    private static bool TrustedBy(X509Certificate2 ca, X509Certificate certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    private static string Env(string name, string fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : fallback;
}
