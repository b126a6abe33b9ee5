using Farm.Coordinator.Builds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Farm.Coordinator.Api;

/// <summary>
/// <c>GET /store</c>: where a client uploads a build's context tar and index before <c>POST /builds</c>, e.g.
/// <c>{"cacheStore": "registry://127.0.0.1:5100/farm/cache"}</c> (<c>Farm:Builds:ClientCacheStore</c> when the farm's
/// processes reach the store at another address). <c>farm build --farm URL</c> asks it.
/// </summary>
public static class StoreApi
{
    public static IEndpointRouteBuilder MapFarmStoreApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/store", (BuildService builds) => Results.Json(new { cacheStore = builds.ClientCacheStore }, BuildApi.Json));
        return app;
    }
}
