using System.Security.Claims;
using Farm.Contracts;
using Microsoft.AspNetCore.Http;

namespace Farm.Coordinator.Auth;

/// <summary>
/// Who made a request: the tenant and role of its token, or <see cref="Unrestricted"/> on a coordinator without auth
/// (and on the local farm daemon's owner-only socket). A caller sees, follows and cancels only its tenant's builds; an
/// admin sees every tenant's.
/// </summary>
public sealed record FarmCaller(string? Tenant, FarmRole Role)
{
    internal const string TenantClaim = "farm:tenant";

    /// <summary>Auth is off: every build, no tenant.</summary>
    public static FarmCaller Unrestricted { get; } = new(null, FarmRole.Admin);

    public bool IsRestricted => Role != FarmRole.Admin;

    /// <summary>Whether this caller may know the build exists.</summary>
    public bool Sees(SubmitBuild submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        return !IsRestricted || string.Equals(submission.Tenant, Tenant, StringComparison.Ordinal);
    }

    /// <exception cref="NotPermittedException">A read-only token (FARM4231).</exception>
    public void RequireBuild(string what)
    {
        if (Role == FarmRole.Read)
        {
            throw new NotPermittedException("read", what);
        }
    }

    /// <summary>The caller of <paramref name="http"/>: from its authenticated token, or unrestricted when auth is off.</summary>
    /// <exception cref="UnauthenticatedException">Auth is on and the request has no token (the fallback policy answers it before this).</exception>
    public static FarmCaller Of(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var tokens = (FarmTokens?)http.RequestServices.GetService(typeof(FarmTokens));
        if (tokens is not { Enabled: true })
        {
            return Unrestricted;
        }

        var user = http.User;
        if (user.Identity?.IsAuthenticated != true || user.FindFirstValue(TenantClaim) is not { } tenant
            || !Enum.TryParse<FarmRole>(user.FindFirstValue(ClaimTypes.Role), out var role))
        {
            throw new UnauthenticatedException();
        }

        return new FarmCaller(tenant, role);
    }
}
