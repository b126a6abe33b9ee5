using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Cache;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Farm.Coordinator.Api;

/// <summary>
/// <c>GET /system/df</c> (any role: how much the build cache and, on the local farm, the images take) and
/// <c>POST /system/prune</c> (an <c>admin</c> token, or the local farm's owner: evicts build cache entries least
/// recently used first, <see cref="BuildCacheJanitor"/>). <c>farm system df|prune</c> call them.
/// </summary>
public static class SystemApi
{
    public static IEndpointRouteBuilder MapFarmSystemApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/system/df", async (HttpContext http, BuildService builds) =>
        {
            _ = FarmCaller.Of(http);
            var janitor = await builds.CacheJanitorAsync(http.RequestAborted).ConfigureAwait(false);
            return Results.Json(await janitor.UsageAsync(http.RequestAborted).ConfigureAwait(false), BuildApi.Json);
        });
        app.MapPost("/system/prune", async (HttpContext http, BuildService builds, PruneBody? body) =>
        {
            var caller = FarmCaller.Of(http);
            if (caller.Role != FarmRole.Admin)
            {
                throw new AdminRequiredException(caller.Role.ToString().ToLowerInvariant(), "prune the farm's build cache");
            }

            var request = (body ?? new PruneBody(null, null)).ToRequest();
            if (builds.DeletesBlobsOnPrune && builds.RunningCount > 0)
            {
                throw new BuildsRunningException(builds.RunningCount);
            }

            var janitor = await builds.CacheJanitorAsync(http.RequestAborted).ConfigureAwait(false);
            return Results.Json(await janitor.PruneAsync(request, http.RequestAborted).ConfigureAwait(false), BuildApi.Json);
        });
        return app;
    }

    /// <summary>The body of <c>POST /system/prune</c>: <c>{"untilSeconds": 86400, "keepStorage": 1073741824}</c>, both optional.</summary>
    public sealed record PruneBody(
        [property: JsonPropertyName("untilSeconds")] double? UntilSeconds,
        [property: JsonPropertyName("keepStorage")] long? KeepStorage)
    {
        /// <exception cref="InvalidPruneRequestException">A negative value.</exception>
        public BuildCachePrune ToRequest()
        {
            if (UntilSeconds is < 0 || KeepStorage is < 0)
            {
                throw new InvalidPruneRequestException("untilSeconds and keepStorage must not be negative");
            }

            return new BuildCachePrune(UntilSeconds is { } s ? TimeSpan.FromSeconds(s) : null, KeepStorage);
        }
    }
}

/// <summary>FARM4276: a <c>POST /system/prune</c> body the coordinator cannot use (HTTP 400).</summary>
public sealed class InvalidPruneRequestException(string reason)
    : FarmException(FarmErrorCodes.InvalidPruneRequest, $"The prune request is invalid: {reason}. Send {{\"untilSeconds\": N, \"keepStorage\": BYTES}}, both optional, as farm system prune does.");

/// <summary>FARM4277: the local farm prunes only while no build runs, since a running build may hold a hit whose layer the prune would delete (HTTP 409).</summary>
public sealed class BuildsRunningException(int running)
    : FarmException(FarmErrorCodes.BuildsRunning, $"{running} build(s) run on the local farm, and one may be using a cached layer that pruning would delete: run farm system prune again when they end (farm daemon status lists them).");
