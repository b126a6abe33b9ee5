using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Farm.Coordinator.Api;

/// <summary>
/// The coordinator's HTTP API for builds: <c>POST /builds</c> (a <see cref="SubmitBuild"/> as JSON; 202 with the id),
/// <c>GET /builds/{id}</c> (status, digest, error, steps), <c>GET /builds/{id}/events</c> (JSON lines, each with its
/// <c>seq</c> in the build; <c>?follow=true</c> streams until the build ends, <c>?after=N</c> starts after event N) and
/// <c>GET /builds/{id}/logs</c> (the steps' output lines; the same two parameters), and <c>POST /builds/plan</c> (the
/// same body as <c>POST /builds</c>: which layer steps would run and why, nothing built). Any coordinator of a cluster
/// serves any build's events (<see cref="BuildService.EventsAsync"/>). With auth on, a caller sees only its tenant's
/// builds: another tenant's is answered exactly as an unknown id (404, FARM4210), so a token learns nothing of it.
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
        // The tenant is the token's, whatever the body says (FarmCaller.Unrestricted, without auth: none).
        app.MapPost("/builds", (SubmitBuild submit, HttpContext http, BuildService builds) =>
        {
            var caller = FarmCaller.Of(http);
            caller.RequireBuild("submit builds");
            // Credentials for the push targets come in a header, never in the body: the body is what gets stored.
            var submission = submit with { Tenant = caller.Tenant, PushCredentialRegistries = [], SecretIds = [], SshIds = [] };
            var passed = http.Request.Headers[PushCredentials.Header] is { Count: > 0 } header
                ? PushCredentials.Decode(header.ToString(), submission)
                : null;
            var secrets = http.Request.Headers[BuildSecretsHeader.Name] is { Count: > 0 } secretHeader
                ? BuildSecretsHeader.TryDecode(secretHeader.ToString(), out var problem) ?? throw new InvalidBuildSecretsException(problem!)
                : null;
            if (secrets is { SshAgents.Count: > 0 } && !builds.AcceptsSshAgents)
            {
                // A socket path names a file on the client's machine: only the local farm runs beside it.
                throw new InvalidBuildSecretsException("it passes an SSH agent, which only the local farm (farm build without --farm) can forward");
            }

            if (secrets is { Secrets.Count: > 0 } && !builds.AcceptsSecrets)
            {
                // Workers in processes of their own fetch the values from this coordinator when a step starts: without
                // an address to give them, refusing is better than running the steps without them.
                throw new InvalidBuildSecretsException("this coordinator cannot tell its workers where to fetch a build's secrets (it listens on every interface without Farm:Coordinator:AdvertisedAddress); its operator sets Farm:Coordinator:WorkerApiUrl to the address workers reach its API at");
            }

            var record = builds.Submit(submission, passed, secrets);
            return Results.Accepted($"/builds/{record.BuildId}", new { buildId = record.BuildId, status = Status(record.Status) });
        });
        // A dry run: which steps would run and why, nothing built (farm build --dry-run).
        app.MapPost("/builds/plan", async (SubmitBuild submit, HttpContext http, BuildService builds) =>
        {
            var caller = FarmCaller.Of(http);
            caller.RequireBuild("plan builds");
            var report = await builds.DryRunAsync(submit with { Tenant = caller.Tenant, PushCredentialRegistries = [], Push = false }, http.RequestAborted).ConfigureAwait(false);
            return Results.Json(report, Json);
        });
        app.MapPost("/builds/{id:guid}/cancel", async (Guid id, HttpContext http, BuildService builds) =>
        {
            // Another tenant's build is unknown (404) before a read token is refused (403): a token learns nothing of it.
            var caller = FarmCaller.Of(http);
            if (caller.IsRestricted)
            {
                _ = await builds.GetAsync(id, caller, http.RequestAborted).ConfigureAwait(false);
            }

            caller.RequireBuild("cancel builds");
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
            Results.Json(Describe(await builds.GetAsync(id, FarmCaller.Of(http), http.RequestAborted).ConfigureAwait(false)), Json));
        app.MapGet("/builds/{id:guid}/events", (Guid id, bool? follow, long? after, HttpContext http, BuildService builds, IHostApplicationLifetime lifetime) =>
            StreamAsync(http, builds, lifetime, id, follow == true, after ?? 0, "application/x-ndjson", entry => BuildEventJson.Serialize(entry) + "\n"));
        app.MapGet("/builds/{id:guid}/logs", (Guid id, bool? follow, long? after, HttpContext http, BuildService builds, IHostApplicationLifetime lifetime) =>
            StreamAsync(http, builds, lifetime, id, follow == true, after ?? 0, "text/plain; charset=utf-8", entry => entry.Event is StepLog log ? $"[{log.Line.StepId}] {log.Line.Line}\n" : null));
        return app;
    }

    /// <summary>
    /// Writes the build's events numbered above <paramref name="after"/> as <paramref name="format"/> makes them (null:
    /// skipped). The headers go out at once, so a follower knows it is connected before the next event. A follow also
    /// ends, cleanly and without the build's end event, when this coordinator stops: its client then follows on from
    /// the last <c>seq</c> it saw, on another coordinator, and the server need not wait for followers to leave.
    /// </summary>
    private static async Task StreamAsync(HttpContext http, BuildService builds, IHostApplicationLifetime lifetime, Guid id, bool follow, long after, string contentType, Func<SequencedBuildEvent, string?> format)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        var caller = FarmCaller.Of(http);
        if (caller.IsRestricted)
        {
            // Not this tenant's build: 404 before any header, exactly as for an unknown id.
            _ = await builds.GetAsync(id, caller, stop.Token).ConfigureAwait(false);
        }

        var events = await builds.EventsAsync(id, after, follow, stop.Token).ConfigureAwait(false);
        http.Response.ContentType = contentType;
        await http.Response.StartAsync(http.RequestAborted).ConfigureAwait(false);
        try
        {
            await foreach (var entry in events.ConfigureAwait(false))
            {
                if (format(entry) is { } text)
                {
                    await http.Response.WriteAsync(text, http.RequestAborted).ConfigureAwait(false);
                    await http.Response.Body.FlushAsync(http.RequestAborted).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !http.RequestAborted.IsCancellationRequested)
        {
            // This coordinator stops; the follower goes on elsewhere.
        }
    }

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
