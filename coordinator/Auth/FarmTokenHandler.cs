using System.Security.Claims;
using System.Text.Encodings.Web;
using Farm.Coordinator.Api;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Coordinator.Auth;

/// <summary>
/// ASP.NET Core authentication of <c>Authorization: Bearer TOKEN</c> against the <see cref="FarmTokens"/>: the
/// principal carries the token's tenant and role. A missing or unknown token is challenged with 401, a
/// <c>WWW-Authenticate: Bearer</c> header and the API's error body (FARM4230). The token itself is never logged: the
/// framework logs only the failure message, which does not contain it.
/// </summary>
internal sealed class FarmTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, FarmTokens tokens)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "FarmToken";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!tokens.Enabled)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!tokens.TryAuthenticate(header["Bearer ".Length..].Trim(), out var entry))
        {
            return Task.FromResult(AuthenticateResult.Fail("the bearer token is not in the coordinator's tokens file"));
        }

        var identity = new ClaimsIdentity(
            [new Claim(FarmCaller.TenantClaim, entry.Tenant), new Claim(ClaimTypes.Role, entry.Role.ToString())],
            SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer realm=\"farm\"";
        return ApiErrorMiddleware.WriteAsync(Context, StatusCodes.Status401Unauthorized, new UnauthenticatedException());
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ApiErrorMiddleware.WriteAsync(Context, StatusCodes.Status403Forbidden, new NotPermittedException("read", "do this"));
}
