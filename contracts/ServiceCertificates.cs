using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Farm.Contracts;

/// <summary>
/// How a farm process checks the certificate of a service it connects to over TLS (RabbitMQ over AMQPS, Redis): a CA
/// file of the operator's replaces the system's trusted roots for that connection, and the host name is always checked.
/// One place for the coordinator, the workers and the CLI (no reflection: the NativeAOT CLI uses it too).
/// </summary>
public static class ServiceCertificates
{
    /// <summary>The certificates of a PEM file: the CA (or CAs) that signed a service's certificate.</summary>
    /// <param name="path">The file.</param>
    /// <param name="setting">Where the path came from (<c>Farm:RabbitMq:CaPath</c>, <c>FARM_RABBITMQ_CA</c>), for the message.</param>
    /// <exception cref="ServiceCaUnreadableException">The file cannot be read or holds no PEM certificate (FARM3030).</exception>
    public static X509Certificate2Collection LoadCa(string path, string setting)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new ServiceCaUnreadableException(path, setting, e.Message, e);
        }

        return roots.Count > 0 ? roots : throw new ServiceCaUnreadableException(path, setting, "it holds no PEM certificate", null);
    }

    /// <summary>
    /// A validation callback that accepts a certificate for the host name the connection asked for (checked by
    /// <see cref="SslStream"/>, never waived here) whose chain ends in one of <paramref name="roots"/>, and nothing
    /// else: the system's roots play no part.
    /// </summary>
    public static RemoteCertificateValidationCallback TrustOnly(X509Certificate2Collection roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        return (_, certificate, presented, errors) =>
        {
            if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
            if (presented is not null)
            {
                // Intermediates the server sent along.
                foreach (var element in presented.ChainElements)
                {
                    chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }

            using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return chain.Build(leaf);
        };
    }
}

/// <summary>FARM3030: the CA file given for a service's TLS cannot be read, or holds no certificate.</summary>
public sealed class ServiceCaUnreadableException(string path, string setting, string reason, Exception? inner)
    : FarmException(FarmErrorCodes.ServiceCaUnreadable, $"The CA file '{path}' ({setting}) cannot be used: {reason}. Give a readable PEM file with the certificate of the CA that signed the service's certificate.", inner);
