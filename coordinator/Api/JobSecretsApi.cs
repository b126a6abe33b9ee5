using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Farm.Coordinator.Api;

/// <summary>
/// <c>GET /jobs/secrets/{build}</c>: a shared farm's worker fetches the secrets a step mounts when it starts it, from
/// the coordinator that accepted the build and holds them in memory (docs/architecture.md, "RUN --mount and build
/// secrets"). The caller is not a tenant: the endpoint takes no farm token but a job credential,
/// <c>Authorization: FarmJob CREDENTIAL</c> (<see cref="JobSecretsGrant"/>), minted for that step of that build and
/// refused once its job has ended (<see cref="BuildSecrets.Redeem"/>, FARM4340). The answer is
/// <see cref="BuildSecretsHeader"/>'s encoding of the values the credential was granted, with <c>no-store</c>; the URL
/// holds the build id only, so the request line that servers and traces record holds nothing secret.
/// </summary>
public static class JobSecretsApi
{
    public static IEndpointRouteBuilder MapFarmJobSecretsApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(JobSecretsEndpoint.Route, (Guid buildId, HttpContext http, BuildService builds) =>
        {
            var header = http.Request.Headers.Authorization.ToString();
            var prefix = JobSecretsGrant.Scheme + " ";
            var credential = header.StartsWith(prefix, StringComparison.Ordinal) ? header[prefix.Length..].Trim() : string.Empty;
            var values = builds.Secrets.Redeem(credential, buildId);
            http.Response.Headers.CacheControl = "no-store";
            return Results.Text(BuildSecretsHeader.Encode(values), "text/plain; charset=utf-8");
        }).AllowAnonymous();
        return app;
    }
}
