using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Farm.Coordinator.Hosting;
using Farm.Worker.Hosting;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Farm.Coordinator.Auth;

/// <summary>
/// The coordinator's HTTP listener and who may use it, composed once: the address and port
/// (<see cref="CoordinatorOptions.HttpAddress"/>, <see cref="CoordinatorOptions.HttpPort"/>), TLS from PEM files
/// (<see cref="CoordinatorTlsOptions"/>), bearer tokens per tenant (<see cref="CoordinatorAuthOptions"/>). With
/// tokens, every endpoint but the probes (<c>/healthz</c>, <c>/livez</c>, <c>/readyz</c>) and the dashboard's static files needs one (the fallback policy), and
/// the build API shows a token only its tenant's builds (<see cref="FarmCaller"/>).
/// </summary>
public static class AuthHosting
{
    /// <summary>Listens on TCP per the settings, with auth per the settings.</summary>
    /// <exception cref="AuthSettingsException">
    /// A non-loopback address without tokens and without <c>Auth:Disabled=true</c>, an unusable tokens file, or a
    /// certificate that cannot be loaded (FARM4232).
    /// </exception>
    public static WebApplicationBuilder AddFarmCoordinatorListener(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var coordinator = FarmSettings.Read<CoordinatorOptions>(builder.Configuration, CoordinatorOptions.Section);
        var auth = FarmSettings.Read<CoordinatorAuthOptions>(builder.Configuration, CoordinatorAuthOptions.Section);
        var tls = FarmSettings.Read<CoordinatorTlsOptions>(builder.Configuration, CoordinatorTlsOptions.Section);
        var address = ParseAddress(coordinator.HttpAddress);
        if (!IPAddress.IsLoopback(address) && !auth.Enabled && !auth.Disabled)
        {
            throw new AuthSettingsException(
                $"The coordinator would serve its API on {coordinator.HttpAddress}, beyond loopback, to anyone who reaches it: builds run commands on the workers. " +
                $"Set {CoordinatorAuthOptions.Section}:TokensFile to a tokens file (farm-coordinator token create --tenant NAME), " +
                $"or set {CoordinatorAuthOptions.Section}:Disabled=true if the network in front of it authenticates every client.");
        }

        var certificate = tls.Enabled ? LoadCertificate(tls) : null;
        builder.Services.AddFarmAuthorization(auth.Enabled);
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, coordinator.HttpPort, listen =>
        {
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        // Where this coordinator's jobs tell workers to fetch build secrets: the configured address, or the one bound.
        builder.Services.AddSingleton(sp => new JobSecretsEndpoint(
            coordinator.WorkerApiUrl,
            coordinator.AdvertisedAddress,
            () => sp.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses ?? []));
        return builder;
    }

    /// <summary>
    /// The authentication scheme (a no-op while <paramref name="enabled"/> is false, as on the local farm daemon's
    /// owner-only socket) and, when enabled, a fallback policy that requires a token on every endpoint that does not
    /// allow anonymous callers.
    /// </summary>
    public static IServiceCollection AddFarmAuthorization(this IServiceCollection services, bool enabled)
    {
        services.AddAuthentication(FarmTokenHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, FarmTokenHandler>(FarmTokenHandler.SchemeName, null);
        services.AddAuthorization(o =>
        {
            if (enabled)
            {
                o.FallbackPolicy = new AuthorizationPolicyBuilder(FarmTokenHandler.SchemeName).RequireAuthenticatedUser().Build();
            }
        });
        return services;
    }

    private static IPAddress ParseAddress(string address)
    {
        if (string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return IPAddress.Loopback;
        }

        if (string.Equals(address, "*", StringComparison.Ordinal))
        {
            return IPAddress.IPv6Any;
        }

        return IPAddress.TryParse(address, out var parsed)
            ? parsed
            : throw new AuthSettingsException($"{CoordinatorOptions.Section}:HttpAddress '{address}' is not an IP address: use 127.0.0.1 (the default), an interface's address, 0.0.0.0 or ::.");
    }

    private static X509Certificate2 LoadCertificate(CoordinatorTlsOptions tls)
    {
        if (string.IsNullOrWhiteSpace(tls.CertificatePath) || string.IsNullOrWhiteSpace(tls.KeyPath))
        {
            throw new AuthSettingsException($"{CoordinatorTlsOptions.Section} needs both CertificatePath and KeyPath (PEM files).");
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(tls.CertificatePath, tls.KeyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new AuthSettingsException($"The certificate {tls.CertificatePath} with key {tls.KeyPath} cannot be loaded: {e.Message}. Give PEM files, the key unencrypted.", e);
        }
    }
}
