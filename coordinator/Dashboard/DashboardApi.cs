using Farm.Contracts;
using Farm.Coordinator.Api;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Telemetry;
using Farm.Coordinator.Workers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Farm.Coordinator.Dashboard;

/// <summary>
/// The live dashboard: plain HTML, CSS and JavaScript embedded in this assembly (no page build step), served at
/// <c>/</c>, and the JSON it polls: <c>GET /api/builds</c> (recent builds, newest first), <c>/api/builds/{id}</c> (a
/// build's timeline: each layer step with its worker, cached or built, the worker's phases, why it ran, and whether it
/// is on the critical path),
/// <c>/api/builds/{id}/logs?step=</c> (a step's output), <c>/api/workers</c> and <c>/api/stats</c> (cache hit ratio,
/// queue depth and slots over time).
/// </summary>
public static class DashboardApi
{
    private const int RecentBuilds = 50;

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.Ordinal)
    {
        [".html"] = "text/html; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
    };

    public static IEndpointRouteBuilder MapFarmDashboard(this IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // The page and its scripts hold no data: anyone may load them; the JSON they fetch needs a token when auth is on
        // (the page asks for one and sends it as a bearer token).
        app.MapGet("/", () => Asset("index.html")).AllowAnonymous();
        app.MapGet("/dashboard/{file}", (string file) => Asset(file)).AllowAnonymous();
        app.MapGet("/api/builds", (HttpContext http, BuildRegistry registry) =>
        {
            var caller = FarmCaller.Of(http);
            return Results.Json(registry.All.Where(b => caller.Sees(b.Submission)).Reverse().Take(RecentBuilds).Select(Summary).ToList(), BuildApi.Json);
        });
        // A build that ran on another coordinator comes from its build grain's stored state.
        app.MapGet("/api/builds/{id:guid}", async (Guid id, HttpContext http, BuildService builds, CancellationToken cancellationToken) =>
            Results.Json(Timeline(await builds.GetAsync(id, FarmCaller.Of(http), cancellationToken).ConfigureAwait(false)), BuildApi.Json));
        app.MapGet("/api/builds/{id:guid}/logs", async (Guid id, string? step, HttpContext http, BuildService builds, CancellationToken cancellationToken) =>
        {
            var record = await builds.GetAsync(id, FarmCaller.Of(http), cancellationToken).ConfigureAwait(false);
            var lines = record.Events.OfType<StepLog>()
                .Where(l => step is null || l.Line.StepId == step)
                .Select(l => step is null ? $"[{l.Line.StepId}] {l.Line.Line}" : l.Line.Line);
            return Results.Text(string.Join('\n', lines), "text/plain; charset=utf-8");
        });
        app.MapGet("/api/workers", (WorkerRegistry workers) => Results.Json(workers.All, BuildApi.Json));
        app.MapGet("/api/stats", (FarmMonitor monitor) => Results.Json(new { now = monitor.Now(), history = monitor.Samples }, BuildApi.Json));
        return app;
    }

    private static IResult Asset(string file)
    {
        var stream = typeof(DashboardApi).Assembly.GetManifestResourceStream("Farm.Coordinator.Dashboard." + file);
        return stream is null || !ContentTypes.TryGetValue(Path.GetExtension(file), out var type)
            ? Results.NotFound()
            : Results.Stream(stream, type);
    }

    internal static BuildSummary Summary(BuildRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var events = record.Events;
        var finished = events.OfType<StepFinished>().Select(f => f.Outcome).ToList();
        var started = events.OfType<BuildStarted>().FirstOrDefault();
        return new BuildSummary(
            record.BuildId,
            BuildApi.Status(record.Status),
            record.SubmittedAt,
            record.End?.At,
            record.Submission.Tags,
            started?.LayerSteps,
            finished.Count,
            finished.Count(o => o.Cached),
            (record.End as BuildFailed)?.Code,
            CoordinatorTelemetry.TraceIdOf(record.BuildId));
    }

    /// <summary>A build and its layer steps in start order, each with its phases as the worker timed them.</summary>
    internal static BuildTimeline Timeline(BuildRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var steps = new List<StepBar>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var logLines = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var buildEvent in record.Events)
        {
            switch (buildEvent)
            {
                case StepStarted s:
                    var started = new StepBar(s.StepId, s.Display, s.CacheKey, "running", false, null, null, null, s.At, null, []) { Explanation = s.Explanation, DependsOn = s.DependsOn ?? [] };
                    if (index.TryGetValue(s.StepId, out var again))
                    {
                        // A resumed build starts the step again: its latest start counts.
                        steps[again] = started;
                    }
                    else
                    {
                        index[s.StepId] = steps.Count;
                        steps.Add(started);
                    }

                    break;
                case StepFinished { Outcome: var o }:
                    var bar = new StepBar(
                        o.StepId,
                        o.Display,
                        o.CacheKey,
                        o.Cached ? "cached" : "built",
                        o.Cached,
                        o.Worker,
                        o.Layer?.Digest,
                        o.Layer?.Size,
                        o.Started,
                        o.Finished,
                        o.Timings is { } t ? [.. CoordinatorTelemetry.Phases(t).Where(p => p.Start != default && p.End >= p.Start).Select(p => new PhaseBar(p.Phase, p.Start, p.End))] : [])
                    {
                        Platform = o.Platform ?? FarmPlatforms.Default,
                        Emulated = o.Emulated,
                    };
                    if (index.TryGetValue(o.StepId, out var at))
                    {
                        steps[at] = bar with { Explanation = steps[at].Explanation, DependsOn = steps[at].DependsOn };
                    }
                    else
                    {
                        index[o.StepId] = steps.Count;
                        steps.Add(bar);
                    }

                    break;
                case StepLog l:
                    logLines[l.Line.StepId] = logLines.GetValueOrDefault(l.Line.StepId) + 1;
                    break;
            }
        }

        var failed = record.End as BuildFailed;
        var critical = CriticalPath(steps);
        return new BuildTimeline(
            Summary(record),
            (record.End as BuildFinished)?.ImageDigest,
            failed?.Message,
            [.. steps.Select(s => s with { LogLines = logLines.GetValueOrDefault(s.StepId), Critical = critical.Contains(s.StepId) })]);
    }

    /// <summary>
    /// The chain of steps that set the build's duration: from the step that finished last, back through the dependency
    /// of each that finished last (the one it waited for longest), to a step that waited for none. Finished steps only.
    /// </summary>
    internal static HashSet<string> CriticalPath(IReadOnlyList<StepBar> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var finished = steps.Where(s => s.Finished is not null).ToDictionary(s => s.StepId, StringComparer.Ordinal);
        var path = new HashSet<string>(StringComparer.Ordinal);
        var current = finished.Values.MaxBy(s => s.Finished);
        while (current is not null && path.Add(current.StepId))
        {
            current = current.DependsOn.Select(d => finished.GetValueOrDefault(d)).OfType<StepBar>().MaxBy(s => s.Finished);
        }

        return path;
    }

    internal sealed record BuildSummary(
        Guid BuildId,
        string Status,
        DateTimeOffset SubmittedAt,
        DateTimeOffset? FinishedAt,
        IReadOnlyList<string> Tags,
        int? LayerSteps,
        int StepsDone,
        int StepsCached,
        string? ErrorCode,
        string? TraceId);

    internal sealed record BuildTimeline(BuildSummary Build, string? ImageDigest, string? Error, IReadOnlyList<StepBar> Steps);

    internal sealed record StepBar(
        string StepId,
        string Display,
        string CacheKey,
        string Status,
        bool Cached,
        string? Worker,
        string? Layer,
        long? LayerSize,
        DateTimeOffset Started,
        DateTimeOffset? Finished,
        IReadOnlyList<PhaseBar> Phases)
    {
        public int LogLines { get; init; }

        /// <summary>Why the step ran instead of coming from the cache; null when cached or not recorded.</summary>
        public Dockerfile.Planning.StepExplanation? Explanation { get; init; }

        /// <summary>The layer steps it waited for.</summary>
        public IReadOnlyList<string> DependsOn { get; init; } = [];

        /// <summary>On the chain of steps that set the build's duration (<see cref="CriticalPath"/>).</summary>
        public bool Critical { get; init; }

        /// <summary>The platform the step ran for (<c>os/arch[/variant]</c>); null until it finished.</summary>
        public string? Platform { get; init; }

        /// <summary>Its worker ran it through an emulator (qemu-user-static).</summary>
        public bool Emulated { get; init; }
    }

    internal sealed record PhaseBar(string Phase, DateTimeOffset Start, DateTimeOffset End);
}
