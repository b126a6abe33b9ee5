using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Farm.Oci.Registry;

/// <summary>
/// The one place HTTP connections to registries are configured: a <see cref="SocketsHttpHandler"/> with a short
/// connect timeout, pooled connections, no automatic redirects (blob redirects are followed by the client so the
/// registry's Authorization header never leaks to a storage backend), and trust in the registry's own CA from
/// Docker's <c>certs.d</c> convention. Retries live in <see cref="RegistryClient"/>, not here, because only the
/// client knows which requests can be replayed.
/// </summary>
internal sealed class RegistryHttp : IDisposable
{
    private readonly X509Certificate2Collection _extraRoots;
    private volatile string? _lastCertificateProblem;

    public RegistryHttp(string registry, RegistryClientOptions options)
    {
        CaDirectory = Path.Combine(options.CertsDirectory, registry);
        _extraRoots = LoadRoots(CaDirectory);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            AllowAutoRedirect = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = Validate },
        };
        Client = new HttpClient(handler, disposeHandler: true) { Timeout = options.RequestTimeout };
        Client.DefaultRequestHeaders.UserAgent.ParseAdd("farm/1.0");
        Client.DefaultRequestVersion = System.Net.HttpVersion.Version11;
    }

    public HttpClient Client { get; }

    /// <summary>Where a CA for this registry is looked for.</summary>
    public string CaDirectory { get; }

    public bool HasExtraRoots => _extraRoots.Count > 0;

    /// <summary>Why the last certificate was refused, for the error message; null when none was.</summary>
    public string? LastCertificateProblem => _lastCertificateProblem;

    public void Dispose()
    {
        Client.Dispose();
        foreach (var cert in _extraRoots)
        {
            cert.Dispose();
        }
    }

    private static X509Certificate2Collection LoadRoots(string directory)
    {
        var roots = new X509Certificate2Collection();
        if (!Directory.Exists(directory))
        {
            return roots;
        }

        // Docker reads every *.crt as a CA; *.cert/*.key pairs are client certificates, which Farm does not send.
        foreach (var file in Directory.EnumerateFiles(directory, "*.crt").Order(StringComparer.Ordinal))
        {
            roots.ImportFromPemFile(file);
        }

        return roots;
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        // A wrong name is never forgiven; only an unknown issuer can be fixed by the registry's own CA.
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null || _extraRoots.Count == 0)
        {
            _lastCertificateProblem = errors.ToString();
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = new X509Certificate2(certificate);
        if (custom.Build(leaf))
        {
            return true;
        }

        _lastCertificateProblem = string.Join("; ", custom.ChainStatus.Select(s => s.StatusInformation.Trim()));
        return false;
    }
}
