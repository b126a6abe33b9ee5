using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Farm.Coordinator.Api;

/// <summary>
/// The coordinator's HTTP API for builds: <c>POST /builds</c> (a <see cref="SubmitBuild"/> as JSON; 202 with the id),
/// <c>GET /builds/{id}</c> (status, digest, error, steps), <c>GET /builds/{id}/events</c> (JSON lines;
/// <c>?follow=true</c> streams until the build ends) and <c>GET /builds/{id}/logs</c> (the steps' output lines).
/// Errors become status codes in <see cref="ApiErrorMiddleware"/>.
/// </summary>
public static class BuildApi
{
    /// <summary>camelCase like every other JSON the coordinator writes.</summary>
    internal static readonly JsonSerializerOptions Json = BuildEventJson.Options;

    /// <summary>Binding failures (a body that is not a SubmitBuild) throw, so <see cref="ApiErrorMiddleware"/> answers them too.</summary>
    public static IServiceCollection AddFarmBuildApi(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        return services;
    }

    public static IApplicationBuilder UseFarmApiErrors(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.UseMiddleware<ApiErrorMiddleware>();
    }

    public static IEndpointRouteBuilder MapFarmBuildApi(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPost("/builds", (SubmitBuild submit, BuildService builds) =>
        {
            var record = builds.Submit(submit);
            return Results.Accepted($"/builds/{record.BuildId}", new { buildId = record.BuildId, status = Status(record.Status) });
        });
        app.MapPost("/builds/{id:guid}/cancel", async (Guid id, HttpContext http, BuildService builds) =>
        {
            if (builds.Cancel(id))
            {
                return Results.Accepted($"/builds/{id}", new { buildId = id, status = "cancelling" });
            }

            var record = await builds.GetAsync(id, http.RequestAborted).ConfigureAwait(false);
            return record.IsDone
                ? Results.Json(new { buildId = id, status = Status(record.Status) }, Json)
                : Results.Json(new { error = $"build {id} runs on another coordinator: cancel it there" }, Json, statusCode: StatusCodes.Status409Conflict);
        });
        app.MapGet("/builds/{id:guid}", async (Guid id, HttpContext http, BuildService builds) =>
            Results.Json(Describe(await builds.GetAsync(id, http.RequestAborted).ConfigureAwait(false)), Json));
        app.MapGet("/builds/{id:guid}/events", async (Guid id, bool? follow, HttpContext http, BuildService builds) =>
        {
            var record = await builds.GetAsync(id, http.RequestAborted).ConfigureAwait(false);
            http.Response.ContentType = "application/x-ndjson";
            await foreach (var buildEvent in Events(record, follow == true, http.RequestAborted).ConfigureAwait(false))
            {
                await http.Response.WriteAsync(ToJson(buildEvent).ToJsonString(Json) + "\n", http.RequestAborted).ConfigureAwait(false);
                await http.Response.Body.FlushAsync(http.RequestAborted).ConfigureAwait(false);
            }
        });
        app.MapGet("/builds/{id:guid}/logs", async (Guid id, bool? follow, HttpContext http, BuildService builds) =>
        {
            var record = await builds.GetAsync(id, http.RequestAborted).ConfigureAwait(false);
            http.Response.ContentType = "text/plain; charset=utf-8";
            await foreach (var buildEvent in Events(record, follow == true, http.RequestAborted).ConfigureAwait(false))
            {
                if (buildEvent is StepLog log)
                {
                    await http.Response.WriteAsync($"[{log.Line.StepId}] {log.Line.Line}\n", http.RequestAborted).ConfigureAwait(false);
                    await http.Response.Body.FlushAsync(http.RequestAborted).ConfigureAwait(false);
                }
            }
        });
        return app;
    }

    private static IAsyncEnumerable<BuildEvent> Events(BuildRecord record, bool follow, CancellationToken cancellationToken) =>
        follow ? record.FollowAsync(cancellationToken) : record.Events.ToAsyncEnumerable();

    internal static string Status(BuildStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>An event as one JSON object: <c>type</c> (the event's class name) first, then its fields.</summary>
    internal static JsonObject ToJson(BuildEvent buildEvent) => BuildEventJson.ToNode(buildEvent);

    /// <summary>A build's state: status, image, error and each layer step (running, or cached/built and by which worker).</summary>
    internal static BuildView Describe(BuildRecord record)
    {
        var events = record.Events;
        var steps = new Dictionary<string, StepView>(StringComparer.Ordinal);
        foreach (var buildEvent in events)
        {
            switch (buildEvent)
            {
                case StepStarted started:
                    steps[started.StepId] = new StepView(started.StepId, started.Display, started.CacheKey, "running", null, null, null, null);
                    break;
                case StepFinished { Outcome: var o }:
                    steps[o.StepId] = new StepView(o.StepId, o.Display, o.CacheKey, o.Cached ? "cached" : "built", o.Cached, o.Worker, o.Layer?.Digest, o.Duration.TotalMilliseconds);
                    break;
            }
        }

        var finished = record.End as BuildFinished;
        var failed = record.End as BuildFailed;
        return new BuildView(
            record.BuildId,
            Status(record.Status),
            record.SubmittedAt,
            record.End?.At,
            record.Submission.Tags,
            finished?.ImageDigest,
            finished?.Pushed ?? [],
            failed?.Code,
            failed?.Message,
            [.. steps.Values]);
    }

    internal sealed record BuildView(
        Guid BuildId,
        string Status,
        DateTimeOffset SubmittedAt,
        DateTimeOffset? FinishedAt,
        IReadOnlyList<string> Tags,
        string? ImageDigest,
        IReadOnlyList<string> Pushed,
        string? ErrorCode,
        string? Error,
        IReadOnlyList<StepView> Steps);

    internal sealed record StepView(string StepId, string Display, string CacheKey, string Status, bool? Cached, string? Worker, string? Layer, double? DurationMs);
}
