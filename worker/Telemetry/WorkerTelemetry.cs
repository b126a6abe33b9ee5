using System.Diagnostics;
using System.Diagnostics.Metrics;
using Farm.Contracts;

namespace Farm.Worker.Telemetry;

/// <summary>
/// The worker's traces and metrics, under the names an OpenTelemetry setup subscribes to (<c>Farm.Worker</c>).
/// A job becomes one span with a child span per phase (queued, input fetch, execution, diff, upload), the phases of
/// the Remote Execution API's ExecutedActionMetadata. The phase spans are written from the job's recorded timings
/// once it ends, so the executor stays free of tracing code and the spans carry exactly the times the job reports.
/// </summary>
public sealed class WorkerTelemetry : IDisposable
{
    public const string Name = Farm.Telemetry.FarmTelemetry.Worker;

    private readonly Meter _meter = new(Name);
    private readonly Counter<long> _jobs;
    private readonly Histogram<double> _phaseSeconds;
    private readonly Counter<long> _bytesUploaded;
    private int _busy;
    private long _jobsDone;

    public WorkerTelemetry()
    {
        _jobs = _meter.CreateCounter<long>("farm.worker.jobs", "{job}", "Jobs finished, by outcome (built, empty, failed).");
        _phaseSeconds = _meter.CreateHistogram<double>("farm.worker.step.phase.duration", "s", "Time a job spent in each phase.");
        _bytesUploaded = _meter.CreateCounter<long>("farm.worker.bytes.uploaded", "By", "Compressed layer bytes written to blob stores.");
    }

    public static ActivitySource Source { get; } = new(Name);

    /// <summary>Reports a gauge of the extracted-layer store's size, read when metrics are collected.</summary>
    public void ObserveLayerStore(Func<long> bytes) =>
        _meter.CreateObservableGauge("farm.worker.layer_store.size", bytes, "By", "Bytes of extracted layers on local disk.");

    /// <summary>Reports the bytes of layer blobs this worker downloaded to extract them, read when metrics are collected.</summary>
    public void ObserveDownloads(Func<long> bytes) =>
        _meter.CreateObservableCounter("farm.worker.bytes.downloaded", bytes, "By", "Compressed layer bytes read from blob stores.");

    /// <summary>Reports a gauge of this worker's slots, busy and free, out of <paramref name="slots"/>.</summary>
    public void ObserveSlots(int slots) =>
        _meter.CreateObservableGauge(
            "farm.worker.slots",
            () => new[]
            {
                new Measurement<int>(BusySlots, new KeyValuePair<string, object?>("state", "busy")),
                new Measurement<int>(Math.Max(0, slots - BusySlots), new KeyValuePair<string, object?>("state", "free")),
            },
            "{slot}",
            "The worker's job slots, busy and free.");

    /// <summary>Jobs running now (what the heartbeat reports).</summary>
    public int BusySlots => Volatile.Read(ref _busy);

    /// <summary>Jobs finished since the process started, whatever their outcome.</summary>
    public long JobsDone => Interlocked.Read(ref _jobsDone);

    /// <summary>Counts a slot as busy until the returned object is disposed, however the job ends.</summary>
    public IDisposable TrackBusySlot()
    {
        Interlocked.Increment(ref _busy);
        return new BusySlot(this);
    }

    /// <summary>Starts the span of one job; dispose it when the job ends.</summary>
    public static Activity? StartJob(BuildLayer job, string worker)
    {
        ArgumentNullException.ThrowIfNull(job);
        var activity = Source.StartActivity($"step {job.StepId}", ActivityKind.Internal);
        activity?.SetTag("farm.build_id", job.BuildId.ToString());
        activity?.SetTag("farm.step_id", job.StepId);
        activity?.SetTag("farm.cache_key", job.CacheKey);
        activity?.SetTag("farm.step", job.Step.Display);
        activity?.SetTag("farm.attempt", job.Attempt);
        activity?.SetTag("farm.worker", worker);
        return activity;
    }

    /// <summary>Records a finished job: phase spans under the job's span, phase durations, bytes.</summary>
    public void JobBuilt(Activity? activity, LayerRef? layer, PhaseTimings timings)
    {
        ArgumentNullException.ThrowIfNull(timings);
        var outcome = layer is null ? "empty" : "built";
        _jobs.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        if (layer is not null)
        {
            _bytesUploaded.Add(layer.Size);
            activity?.SetTag("farm.layer.digest", layer.Digest);
            activity?.SetTag("farm.layer.size", layer.Size);
        }

        activity?.SetTag("farm.outcome", outcome);
        Phase(activity, "queued", timings.Queued, timings.WorkerStart);
        Phase(activity, "input_fetch", timings.InputFetchStart, timings.InputFetchEnd);
        Phase(activity, "execute", timings.ExecutionStart, timings.ExecutionEnd);
        Phase(activity, "diff", timings.DiffStart, timings.DiffEnd);
        Phase(activity, "upload", timings.UploadStart, timings.UploadEnd);
    }

    /// <summary>Records a failed job with its code and, for a failing RUN, its exit code.</summary>
    public void JobFailed(Activity? activity, string code, int? exitCode, string message)
    {
        _jobs.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
        activity?.SetTag("farm.outcome", "failed");
        activity?.SetTag("farm.error_code", code);
        if (exitCode is { } exit)
        {
            activity?.SetTag("farm.exit_code", exit);
        }

        activity?.SetStatus(ActivityStatusCode.Error, message);
    }

    private void Phase(Activity? parent, string phase, DateTimeOffset start, DateTimeOffset end)
    {
        if (start == default || end < start)
        {
            return;
        }

        _phaseSeconds.Record((end - start).TotalSeconds, new KeyValuePair<string, object?>("phase", phase));
        if (parent is null)
        {
            return;
        }

        using var span = Source.StartActivity(phase, ActivityKind.Internal, parent.Context, startTime: start);
        span?.SetTag("farm.phase", phase);
        span?.SetEndTime(end.UtcDateTime);
    }

    public void Dispose() => _meter.Dispose();

    private sealed class BusySlot(WorkerTelemetry telemetry) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref telemetry._busy);
                Interlocked.Increment(ref telemetry._jobsDone);
            }
        }
    }
}
