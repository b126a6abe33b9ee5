using System.Globalization;
using System.Net;
using Farm.Contracts;

namespace Farm.Coordinator.Auth;

/// <summary>
/// This coordinator's API address as its workers reach it, for the <see cref="JobSecretsGrant.Url"/> of the jobs it
/// sends: <c>Farm:Coordinator:WorkerApiUrl</c> when set, else the address the listener is bound to (a wildcard address
/// replaced by <c>Farm:Coordinator:AdvertisedAddress</c>). Null when neither says: such a coordinator refuses
/// <c>--secret</c> (FARM4312).
/// </summary>
public sealed class JobSecretsEndpoint
{
    /// <summary>The route of a build's secrets, below the coordinator's API address (served by <c>JobSecretsApi</c>).</summary>
    public const string Route = "/jobs/secrets/{buildId:guid}";

    private readonly Func<IEnumerable<string>> _listening;
    private readonly string? _configured;
    private readonly string? _advertised;
    private string? _resolved;

    /// <param name="configured"><c>Farm:Coordinator:WorkerApiUrl</c>.</param>
    /// <param name="advertised"><c>Farm:Coordinator:AdvertisedAddress</c>.</param>
    /// <param name="listening">The addresses the listener is bound to, once it is (Kestrel's <c>IServerAddressesFeature</c>).</param>
    public JobSecretsEndpoint(string? configured, string? advertised, Func<IEnumerable<string>> listening)
    {
        _configured = string.IsNullOrWhiteSpace(configured) ? null : configured.TrimEnd('/');
        _advertised = string.IsNullOrWhiteSpace(advertised) ? null : advertised;
        _listening = listening;
    }

    /// <summary>The base address, e.g. <c>https://127.0.0.1:8480</c>; null when it cannot be told.</summary>
    public string? Url => _configured ?? (_resolved ??= Resolve());

    /// <summary>The address of build <paramref name="buildId"/>'s secrets below <paramref name="apiUrl"/>.</summary>
    public static string PathFor(string apiUrl, Guid buildId)
    {
        ArgumentNullException.ThrowIfNull(apiUrl);
        return apiUrl.TrimEnd('/') + Route.Replace("{buildId:guid}", buildId.ToString("D", CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    private string? Resolve()
    {
        foreach (var address in _listening())
        {
            // Kestrel reports what it bound: http://127.0.0.1:41234, https://[::]:8480, http://unix:/path.
            if (!Uri.TryCreate(address.Replace("://+:", "://0.0.0.0:", StringComparison.Ordinal).Replace("://*:", "://0.0.0.0:", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                || uri.Scheme is not ("http" or "https")
                || !IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            {
                continue;
            }

            var host = uri.Host;
            if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            {
                if (_advertised is null)
                {
                    continue;
                }

                host = IPAddress.TryParse(_advertised, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{_advertised}]" : _advertised;
            }

            return $"{uri.Scheme}://{host}:{uri.Port.ToString(CultureInfo.InvariantCulture)}";
        }

        return null;
    }
}
