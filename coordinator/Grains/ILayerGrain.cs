using System.Collections.Immutable;
using Farm.Contracts;

namespace Farm.Coordinator.Grains;

/// <summary>
/// One grain per layer cache key: the single flight of docs/architecture.md ("A build, step by step", 5). However many builds ask for a missing layer at
/// once, one <see cref="BuildLayer"/> job runs and every caller gets its outcome; a layer built once is returned at
/// once to later callers.
/// </summary>
public interface ILayerGrain : IGrainWithStringKey
{
    /// <summary>
    /// Builds the layer for this grain's cache key, or joins the job already running for it, or returns the layer
    /// built before. Failures are outcomes, not exceptions: every caller of a shared job gets the same one.
    /// </summary>
    Task<LayerJobOutcome> BuildAsync(LayerJobRequest request);

    /// <summary>
    /// Like <see cref="BuildAsync"/>, but waits at most <paramref name="wait"/> for the outcome and returns null when
    /// the job is still running: call again to keep waiting. Builds wait this way, so that no request stays open for
    /// the length of a job: an activation that must move (its silo or its directory partition leaves the cluster)
    /// deactivates within <paramref name="wait"/>, and the next call reaches (and if needed re-dispatches from) the
    /// new activation, which also receives the job's result.
    /// </summary>
    Task<LayerJobOutcome?> BuildOrJoinAsync(LayerJobRequest request, TimeSpan wait);

    /// <summary>
    /// Build <paramref name="buildId"/> no longer waits (it was cancelled): when no other build awaits the running job,
    /// the job is stopped on its worker and the flight ends as cancelled, remembering nothing.
    /// </summary>
    Task LeaveAsync(Guid buildId);

    /// <summary>
    /// Forgets the remembered layer (its action cache entry was pruned, and its blob may be deleted next), so the next
    /// build runs the step again; a flight in progress is left alone, its outcome is a fresh layer.
    /// </summary>
    Task ForgetAsync();

    /// <summary>The remembered layer, or null when none was built (or the last job failed).</summary>
    Task<LayerJobOutcome?> GetOutcomeAsync();

    /// <summary>A worker reported <see cref="LayerBuilt"/> for one of this key's jobs (called by the results consumer).</summary>
    Task OnJobBuiltAsync(Guid jobId, JobSuccess success);

    /// <summary>A worker reported <see cref="LayerBuildFailed"/> for one of this key's jobs (called by the results consumer).</summary>
    Task OnJobFailedAsync(Guid jobId, JobFailure failure);
}

// Grain arguments are Orleans types of our own ([GenerateSerializer] with explicit ids) wherever the grain keeps or
// returns them: persisted state must not change shape when a wire contract grows a field. The step to run and its
// parent layers are only passed through into BuildLayer, so they stay Farm.Contracts records and cross grain calls
// through Orleans' System.Text.Json codec (see CoordinatorHosting), the same JSON they travel in on RabbitMQ;
// mirroring LayerStep's tree of records here would be a second copy to keep in step for nothing.

/// <summary>What to build for a cache key (the key is the grain's).</summary>
[GenerateSerializer, Immutable, Alias("farm.layer-job-request.v1")]
public sealed record LayerJobRequest
{
    /// <summary>The build that asks; log lines of the job are published under the first asking build's id.</summary>
    [Id(0)]
    public Guid BuildId { get; init; }

    /// <summary>e.g. <c>stage-1/step-3</c>, for logs and events.</summary>
    [Id(1)]
    public string StepId { get; init; } = string.Empty;

    /// <summary>Where parents are read and the layer is written, e.g. <c>registry://127.0.0.1:5100/farm/cache</c>.</summary>
    [Id(2)]
    public string BlobStore { get; init; } = string.Empty;

    /// <summary>The layers below the step, bottom first.</summary>
    [Id(3)]
    public ImmutableArray<LayerRef> Parents { get; init; } = [];

    [Id(4)]
    public LayerStep? Step { get; init; }

    /// <summary><c>gzip</c> or <c>zstd</c>.</summary>
    [Id(5)]
    public string Compression { get; init; } = "gzip";

    /// <summary>The build's SOURCE_DATE_EPOCH, the latest modification time of the layer's entries (<see cref="BuildLayer.SourceDateEpoch"/>).</summary>
    [Id(6)]
    public DateTimeOffset? SourceDateEpoch { get; init; }

    /// <summary>The platform the step runs for (<see cref="BuildLayer.Platform"/>); null for linux/amd64.</summary>
    [Id(7)]
    public string? Platform { get; init; }

    /// <summary>
    /// Where the job's worker fetches the build secrets the step mounts, and the job's credential
    /// (<see cref="BuildLayer.Secrets"/>). Passed through into the job, never stored: the grain's state holds outcomes only.
    /// </summary>
    [Id(8)]
    public JobSecretsGrant? Secrets { get; init; }
}

/// <summary>
/// The outcome of a layer job: <see cref="Success"/> (a layer, or none when the step changed nothing) or
/// <see cref="Failure"/>, exactly one of them set.
/// </summary>
[GenerateSerializer, Immutable, Alias("farm.layer-job-outcome.v1")]
public sealed record LayerJobOutcome
{
    [Id(0)]
    public string CacheKey { get; init; } = string.Empty;

    /// <summary>The job that produced this outcome (the last attempt's).</summary>
    [Id(1)]
    public Guid JobId { get; init; }

    /// <summary>Jobs published for this outcome: 1 unless retryable failures made the grain try again.</summary>
    [Id(2)]
    public int Attempts { get; init; }

    [Id(3)]
    public JobSuccess? Success { get; init; }

    [Id(4)]
    public JobFailure? Failure { get; init; }

    public bool Succeeded => Success is not null;
}

/// <summary>A built layer (null when the step changed nothing), who built it and when each phase ran.</summary>
[GenerateSerializer, Immutable, Alias("farm.job-success.v1")]
public sealed record JobSuccess
{
    [Id(0)]
    public BuiltLayer? Layer { get; init; }

    [Id(1)]
    public string Worker { get; init; } = string.Empty;

    [Id(2)]
    public JobTimings Timings { get; init; } = new();

    /// <summary>The worker ran the step through an emulator (<see cref="LayerBuilt.Emulated"/>).</summary>
    [Id(3)]
    public bool Emulated { get; init; }

    public static JobSuccess From(LayerBuilt built)
    {
        ArgumentNullException.ThrowIfNull(built);
        return new JobSuccess
        {
            Layer = built.Layer is { } l ? new BuiltLayer { Digest = l.Digest, DiffId = l.DiffId, MediaType = l.MediaType, Size = l.Size } : null,
            Worker = built.Worker,
            Timings = JobTimings.From(built.Timings),
            Emulated = built.Emulated,
        };
    }
}

/// <summary>A layer blob in the blob store; <see cref="ToLayerRef"/> gives the contract form.</summary>
[GenerateSerializer, Immutable, Alias("farm.built-layer.v1")]
public sealed record BuiltLayer
{
    /// <summary>Digest of the compressed blob, <c>sha256:...</c>.</summary>
    [Id(0)]
    public string Digest { get; init; } = string.Empty;

    /// <summary>Digest of the uncompressed tar (the OCI diff_id).</summary>
    [Id(1)]
    public string DiffId { get; init; } = string.Empty;

    [Id(2)]
    public string MediaType { get; init; } = string.Empty;

    [Id(3)]
    public long Size { get; init; }

    public LayerRef ToLayerRef() => new(Digest, DiffId, MediaType, Size);
}

/// <summary>When each phase of the job ran on the worker (see <see cref="PhaseTimings"/>).</summary>
[GenerateSerializer, Immutable, Alias("farm.job-timings.v1")]
public sealed record JobTimings
{
    [Id(0)]
    public DateTimeOffset Queued { get; init; }

    [Id(1)]
    public DateTimeOffset WorkerStart { get; init; }

    [Id(2)]
    public DateTimeOffset InputFetchStart { get; init; }

    [Id(3)]
    public DateTimeOffset InputFetchEnd { get; init; }

    [Id(4)]
    public DateTimeOffset ExecutionStart { get; init; }

    [Id(5)]
    public DateTimeOffset ExecutionEnd { get; init; }

    [Id(6)]
    public DateTimeOffset DiffStart { get; init; }

    [Id(7)]
    public DateTimeOffset DiffEnd { get; init; }

    [Id(8)]
    public DateTimeOffset UploadStart { get; init; }

    [Id(9)]
    public DateTimeOffset UploadEnd { get; init; }

    public static JobTimings From(PhaseTimings t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return new JobTimings
        {
            Queued = t.Queued,
            WorkerStart = t.WorkerStart,
            InputFetchStart = t.InputFetchStart,
            InputFetchEnd = t.InputFetchEnd,
            ExecutionStart = t.ExecutionStart,
            ExecutionEnd = t.ExecutionEnd,
            DiffStart = t.DiffStart,
            DiffEnd = t.DiffEnd,
            UploadStart = t.UploadStart,
            UploadEnd = t.UploadEnd,
        };
    }
}

/// <summary>Why a job failed: the worker's error (code, message, exit code and output tail of a failing RUN), or the coordinator's.</summary>
[GenerateSerializer, Immutable, Alias("farm.job-failure.v1")]
public sealed record JobFailure
{
    /// <summary>The FARMnnnn code: the worker's for a step failure, FARM40xx when the coordinator gave up.</summary>
    [Id(0)]
    public string Code { get; init; } = string.Empty;

    [Id(1)]
    public string Message { get; init; } = string.Empty;

    [Id(2)]
    public int? ExitCode { get; init; }

    [Id(3)]
    public ImmutableArray<string> OutputTail { get; init; } = [];

    /// <summary>The failure says nothing about the step (a store or worker fault): another attempt may succeed.</summary>
    [Id(4)]
    public bool Retryable { get; init; }

    /// <summary>The worker that reported it; empty for the coordinator's own failures.</summary>
    [Id(5)]
    public string Worker { get; init; } = string.Empty;

    public static JobFailure From(LayerBuildFailed failed)
    {
        ArgumentNullException.ThrowIfNull(failed);
        return new JobFailure
        {
            Code = failed.Code,
            Message = failed.Message,
            ExitCode = failed.ExitCode,
            OutputTail = [.. failed.OutputTail],
            Retryable = failed.Retryable,
            Worker = failed.Worker,
        };
    }
}

/// <summary>
/// The layer grain's persisted state. Orleans' Redis storage records the state's .NET type name: this type is
/// versioned by name, never renamed or moved; a new shape gets a new type (V2) and a migration.
/// </summary>
[GenerateSerializer, Alias("farm.layer-grain-state.v1")]
public sealed record LayerGrainStateV1
{
    /// <summary>The successful outcome; failures are not persisted (see <see cref="LayerGrain"/>).</summary>
    [Id(0)]
    public LayerJobOutcome? Outcome { get; init; }
}
