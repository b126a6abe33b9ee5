using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Farm.Contracts;

namespace Farm.Cli.Remote;

/// <summary>
/// What the CLI shows a remote coordinator (<c>--farm URL</c>) about itself and trusts of it: the bearer token from
/// <c>--token-file</c>, else <c>FARM_TOKEN_FILE</c>, else <c>FARM_TOKEN</c>; the coordinator's certificate checked
/// against the CA in <c>FARM_CA</c> (PEM) when set, else the system's store. The local farm daemon's socket needs
/// neither.
/// </summary>
internal static class FarmCredentials
{
    /// <summary>A global flag: any command that talks to a coordinator sends the token in this file.</summary>
    public static Option<string> TokenFileOption { get; } = new("--token-file")
    {
        Description = "A file holding the token for --farm / FARM_HOST (default: $FARM_TOKEN_FILE, else the token in $FARM_TOKEN).",
        Recursive = true,
    };

    /// <summary>Set once the command line is parsed.</summary>
    public static string? TokenFile { get; set; }

    /// <summary>The token to send, or null for none.</summary>
    /// <exception cref="ClientCredentialsException">The token file cannot be read or is empty (FARM5031).</exception>
    public static string? Token()
    {
        var file = TokenFile is { Length: > 0 } f ? f : Environment.GetEnvironmentVariable("FARM_TOKEN_FILE");
        if (file is { Length: > 0 })
        {
            string text;
            try
            {
                text = File.ReadAllText(file).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ClientCredentialsException($"the token file {file} cannot be read ({e.Message})", e);
            }

            return text.Length > 0 ? text : throw new ClientCredentialsException($"the token file {file} is empty", null);
        }

        return Environment.GetEnvironmentVariable("FARM_TOKEN") is { Length: > 0 } token ? token.Trim() : null;
    }

    /// <summary>The handler for a coordinator's HTTP API: a short connect timeout, and FARM_CA as the only trusted root when set.</summary>
    /// <exception cref="ClientCredentialsException">FARM_CA cannot be read (FARM5031).</exception>
    public static SocketsHttpHandler Handler()
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) };
        if (Environment.GetEnvironmentVariable("FARM_CA") is { Length: > 0 } caFile)
        {
            var roots = new X509Certificate2Collection();
            try
            {
                roots.ImportFromPemFile(caFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new ClientCredentialsException($"FARM_CA {caFile} cannot be read as PEM certificates ({e.Message})", e);
            }

            if (roots.Count == 0)
            {
                throw new ClientCredentialsException($"FARM_CA {caFile} holds no PEM certificate", null);
            }

            // The CA replaces the system's roots for this connection; the host name is still checked.
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            policy.CustomTrustStore.AddRange(roots);
            handler.SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = policy };
        }

        return handler;
    }

    public static void Authorize(HttpClient http)
    {
        if (Token() is { } token)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }
}

/// <summary>FARM5031: the token file or the CA file cannot be read.</summary>
public sealed class ClientCredentialsException(string reason, Exception? inner)
    : FarmException(FarmErrorCodes.ClientCredentials, $"{reason}: give a readable file (--token-file, FARM_TOKEN_FILE, FARM_CA).", inner);

/// <summary>FARM5030: the coordinator refused the token (401) or its role (403).</summary>
public sealed class FarmAuthException(string url, string reason)
    : FarmException(FarmErrorCodes.FarmAuth, $"the farm at {url} {reason}. Set FARM_TOKEN (or --token-file) to a token its operator minted for you (farm-coordinator token create --tenant NAME).");
