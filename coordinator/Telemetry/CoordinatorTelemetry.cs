using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Grains;
using Farm.Telemetry;

namespace Farm.Coordinator.Telemetry;

/// <summary>
/// The coordinator's traces and metrics (<c>Farm.Coordinator</c>, docs/architecture.md, "Telemetry"). A build is one span,
/// parented on whatever started it (the HTTP request's <c>traceparent</c>, or the <see cref="SubmitBuild"/> message's
/// context that MassTransit restores), with a span per stage, per layer step (cache key, cached, worker, layer bytes)
/// and for the push. A step's span is current while its layer grain is called: Orleans carries it into the grain and
/// MassTransit into the <see cref="BuildLayer"/> message, so the worker's phase spans land in the same trace.
/// Static, like the ActivitySource it wraps: the orchestrator is built with <c>new</c> in several places.
/// </summary>
public static class CoordinatorTelemetry
{
    public const string Name = FarmTelemetry.Coordinator;

    private static readonly Meter Meter = new(Name);
    private static readonly Counter<long> Builds = Meter.CreateCounter<long>("farm.builds", "{build}", "Builds ended, by outcome (succeeded, failed).");
    private static readonly Histogram<double> BuildSeconds = Meter.CreateHistogram<double>("farm.build.duration", "s", "Time from submission to the end of a build, by outcome.");
    private static readonly Histogram<double> StepSeconds = Meter.CreateHistogram<double>("farm.step.duration", "s", "Time a layer step spent in each phase (queued, input_fetch, execute, diff, upload; total for the whole step).");
    private static readonly Counter<long> CacheHits = Meter.CreateCounter<long>("farm.cache.hits", "{step}", "Layer steps answered by the action cache.");
    private static readonly Counter<long> CacheMisses = Meter.CreateCounter<long>("farm.cache.misses", "{step}", "Layer steps that needed a layer grain (and usually a worker).");
    private static readonly Counter<long> LayerBytes = Meter.CreateCounter<long>("farm.layers.bytes", "By", "Compressed bytes of the layers workers built for this coordinator's builds.");
    private static readonly ConcurrentDictionary<Guid, string> TraceIds = new();
    private static long _hits;
    private static long _misses;

    public static ActivitySource Source { get; } = new(Name);

    /// <summary>Cache hits since the process started (for the dashboard's hit ratio).</summary>
    public static long Hits => Interlocked.Read(ref _hits);

    /// <summary>Cache misses since the process started.</summary>
    public static long Misses => Interlocked.Read(ref _misses);

    /// <summary>The trace id of a build this process ran, when it was traced.</summary>
    public static string? TraceIdOf(Guid buildId) => TraceIds.TryGetValue(buildId, out var id) ? id : null;

    /// <summary>Starts the span of a whole build, a child of the current activity (the request or message that submitted it).</summary>
    public static Activity? StartBuild(SubmitBuild submit)
    {
        ArgumentNullException.ThrowIfNull(submit);
        var span = Source.StartActivity("build", ActivityKind.Internal);
        if (span is null)
        {
            return null;
        }

        span.SetTag("farm.build_id", submit.BuildId.ToString());
        span.SetTag("farm.tags", string.Join(",", submit.Tags));
        span.SetTag("farm.target", submit.Target);
        span.SetTag("farm.no_cache", submit.NoCache);
        span.SetTag("farm.tenant", submit.Tenant);
        TraceIds[submit.BuildId] = span.TraceId.ToHexString();
        return span;
    }

    /// <summary>Records how a build ended (its <see cref="BuildFinished"/> or <see cref="BuildFailed"/>) on its span and in the build metrics.</summary>
    public static void BuildEnded(Activity? span, BuildEvent? end, TimeSpan duration)
    {
        var succeeded = end is BuildFinished;
        var outcome = new KeyValuePair<string, object?>("outcome", succeeded ? "succeeded" : "failed");
        Builds.Add(1, outcome);
        BuildSeconds.Record(duration.TotalSeconds, outcome);
        if (span is null)
        {
            return;
        }

        span.SetTag("farm.outcome", succeeded ? "succeeded" : "failed");
        switch (end)
        {
            case BuildFinished finished:
                span.SetTag("farm.image_digest", finished.ImageDigest);
                break;
            case BuildFailed failed:
                span.SetTag("farm.error_code", failed.Code);
                span.SetStatus(ActivityStatusCode.Error, failed.Message);
                break;
            default:
                span.SetStatus(ActivityStatusCode.Error, "the build ended without a result");
                break;
        }
    }

    /// <summary>Starts the span of one stage (its layer steps run inside it).</summary>
    public static Activity? StartStage(int index, string? name)
    {
        var span = Source.StartActivity(name is null ? $"stage {index}" : $"stage {index} ({name})", ActivityKind.Internal);
        span?.SetTag("farm.stage", index);
        span?.SetTag("farm.stage_name", name);
        return span;
    }

    /// <summary>Starts the span of one layer step; keep it current while the layer grain is called.</summary>
    public static Activity? StartStep(string stepId, string display, string cacheKey, string? platform = null)
    {
        var span = Source.StartActivity($"step {stepId}", ActivityKind.Internal);
        span?.SetTag("farm.step_id", stepId);
        span?.SetTag("farm.step", display);
        span?.SetTag("farm.cache_key", cacheKey);
        span?.SetTag("farm.platform", platform ?? FarmPlatforms.Default);
        return span;
    }

    /// <summary>Records a finished step: its span's attributes, the cache hit or miss and the worker's phase durations.</summary>
    public static void StepFinished(Activity? span, StepOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var cached = new KeyValuePair<string, object?>("cached", outcome.Cached);
        if (outcome.Cached)
        {
            CacheHits.Add(1);
            Interlocked.Increment(ref _hits);
        }
        else
        {
            CacheMisses.Add(1);
            Interlocked.Increment(ref _misses);
            if (outcome.Layer is { } built)
            {
                LayerBytes.Add(built.Size);
            }
        }

        StepSeconds.Record(outcome.Duration.TotalSeconds, new KeyValuePair<string, object?>("phase", "total"), cached);
        if (outcome.Timings is { } t)
        {
            foreach (var (phase, start, end) in Phases(t))
            {
                if (start != default && end >= start)
                {
                    StepSeconds.Record((end - start).TotalSeconds, new KeyValuePair<string, object?>("phase", phase), cached);
                }
            }
        }

        if (span is null)
        {
            return;
        }

        span.SetTag("farm.cached", outcome.Cached);
        span.SetTag("farm.worker", outcome.Worker);
        span.SetTag("farm.emulated", outcome.Emulated);
        span.SetTag("farm.exit_code", 0);
        span.SetTag("farm.job_id", outcome.JobId?.ToString());
        span.SetTag("farm.layer.digest", outcome.Layer?.Digest);
        span.SetTag("farm.layer.size", outcome.Layer?.Size ?? 0);
    }

    /// <summary>Marks a step's span failed with the worker's code and, for a failing RUN, its exit code.</summary>
    public static void StepFailed(Activity? span, string code, int? exitCode, string? worker, string message)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag("farm.error_code", code);
        span.SetTag("farm.exit_code", exitCode);
        span.SetTag("farm.worker", worker);
        span.SetStatus(ActivityStatusCode.Error, message);
    }

    /// <summary>Starts the span of the push of the image to its tags.</summary>
    public static Activity? StartPush(IReadOnlyList<string> tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        var span = Source.StartActivity("push", ActivityKind.Client);
        span?.SetTag("farm.tags", string.Join(",", tags));
        return span;
    }

    /// <summary>The worker's phases, after the Remote Execution API's ExecutedActionMetadata.</summary>
    internal static IEnumerable<(string Phase, DateTimeOffset Start, DateTimeOffset End)> Phases(JobTimings t)
    {
        ArgumentNullException.ThrowIfNull(t);
        yield return ("queued", t.Queued, t.WorkerStart);
        yield return ("input_fetch", t.InputFetchStart, t.InputFetchEnd);
        yield return ("execute", t.ExecutionStart, t.ExecutionEnd);
        yield return ("diff", t.DiffStart, t.DiffEnd);
        yield return ("upload", t.UploadStart, t.UploadEnd);
    }
}
