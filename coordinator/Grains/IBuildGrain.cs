using System.Collections.Immutable;
using Farm.Contracts;
using Farm.Coordinator.Builds;

namespace Farm.Coordinator.Grains;

/// <summary>
/// One grain per build id: the build's state machine (queued, running, succeeded or failed), persisted in grain
/// storage so that another silo can carry a build on when the silo running it stops (docs/architecture.md, "Failure model").
/// The silo where the grain is active runs the build (<see cref="BuildService"/>) and reports its events here.
/// </summary>
public interface IBuildGrain : IGrainWithGuidKey
{
    /// <summary>
    /// Records the submission as queued and starts it on this grain's silo; a build already known returns its
    /// state unchanged (a redelivered submission starts nothing twice).
    /// </summary>
    Task<BuildGrainStateV1> SubmitAsync(SubmitBuild submission, DateTimeOffset submittedAt);

    /// <summary>The build's state, or null when no build has this id.</summary>
    Task<BuildGrainStateV1?> GetAsync();

    /// <summary>
    /// Applies events of the run on <paramref name="silo"/> (as <see cref="BuildEventJson"/> lines, in order): step
    /// states, status, the image digest or the error; the first <see cref="BuildFinished"/> or
    /// <see cref="BuildFailed"/> ends the build and publishes <see cref="BuildCompleted"/>. An empty batch is the
    /// run's heartbeat: while it comes and its silo is active, no other silo resumes the build. False when the grain
    /// does not know the build (its state was lost with Redis's data): the run then restores it (<see cref="RestoreAsync"/>).
    /// </summary>
    Task<bool> RecordAsync(ImmutableArray<string> events, string silo);

    /// <summary>
    /// Persists the build again from what the silo running it knows, and registers its resume reminder again: after
    /// Redis lost its data (docs/architecture.md, "Failure model"). A build the grain still knows keeps its state;
    /// only storage and the reminder are written again.
    /// </summary>
    Task RestoreAsync(BuildSnapshot snapshot);

    /// <summary>
    /// Resumes the build on this grain's silo when the silo that ran it is no longer active (or its run stopped
    /// reporting): called for every unfinished build when a silo is declared dead, so takeover does not wait for the
    /// next reminder tick.
    /// </summary>
    Task CheckRunAsync();
}

/// <summary>What the silo running a build knows of it, to persist it again after its grain state was lost.</summary>
[GenerateSerializer, Immutable, Alias("farm.build-snapshot")]
public sealed record BuildSnapshot
{
    /// <summary>The <see cref="SubmitBuild"/> as JSON (camelCase), its build id set.</summary>
    [Id(0)]
    public string Submission { get; init; } = string.Empty;

    [Id(1)]
    public DateTimeOffset SubmittedAt { get; init; }

    /// <summary>The run's events so far as <see cref="BuildEventJson"/> lines, oldest first.</summary>
    [Id(2)]
    public ImmutableArray<string> Events { get; init; } = [];

    /// <summary>The number of the run (1, or the <see cref="BuildResumed.Run"/> it resumed as).</summary>
    [Id(3)]
    public int Run { get; init; } = 1;

    /// <summary>The silo the run is on, as <c>SiloAddress.ToParsableString()</c>.</summary>
    [Id(4)]
    public string Silo { get; init; } = string.Empty;
}

/// <summary>
/// The build grain's persisted state. Orleans' Redis storage records the state's .NET type name: this type is
/// versioned by name, never renamed or moved; a new shape gets a new type (V2) and a migration. The submission and
/// the events are kept as their JSON (the same JSON the HTTP API serves), so a contract that grows a field does not
/// change the stored shape.
/// </summary>
[GenerateSerializer, Immutable, Alias("farm.build-grain-state.v1")]
public sealed record BuildGrainStateV1
{
    /// <summary>The <see cref="SubmitBuild"/> as JSON (camelCase), its build id set, and its tenant (the coordinator set it from the token or the AMQP user).</summary>
    [Id(0)]
    public string Submission { get; init; } = string.Empty;

    [Id(1)]
    public BuildStatus Status { get; init; }

    [Id(2)]
    public DateTimeOffset SubmittedAt { get; init; }

    /// <summary>When the first run started.</summary>
    [Id(3)]
    public DateTimeOffset? StartedAt { get; init; }

    [Id(4)]
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>Each layer step the build reached, in the order they started.</summary>
    [Id(5)]
    public ImmutableArray<BuildStepStateV1> Steps { get; init; } = [];

    /// <summary>The manifest digest, once succeeded.</summary>
    [Id(6)]
    public string? ImageDigest { get; init; }

    [Id(7)]
    public ImmutableArray<string> Pushed { get; init; } = [];

    /// <summary>The FARMxxxx code, once failed.</summary>
    [Id(8)]
    public string? ErrorCode { get; init; }

    [Id(9)]
    public string? Error { get; init; }

    /// <summary>The last <see cref="BuildGrain.EventTail"/> events as <see cref="BuildEventJson"/> lines, oldest first.</summary>
    [Id(10)]
    public ImmutableArray<string> Events { get; init; } = [];

    /// <summary>Runs started: 1, plus one per resumption on another silo (or after a restart).</summary>
    [Id(11)]
    public int Runs { get; init; }

    /// <summary>The silo the build runs on (or ran on last), as <c>SiloAddress.ToParsableString()</c>.</summary>
    [Id(12)]
    public string Silo { get; init; } = string.Empty;

    /// <summary>When the run on <see cref="Silo"/> last reported (an event or its heartbeat).</summary>
    [Id(13)]
    public DateTimeOffset? Heartbeat { get; init; }

    public bool IsDone => Status is BuildStatus.Succeeded or BuildStatus.Failed;
}

/// <summary>One layer step of a build as the grain keeps it.</summary>
[GenerateSerializer, Immutable, Alias("farm.build-step-state.v1")]
public sealed record BuildStepStateV1
{
    [Id(0)]
    public string StepId { get; init; } = string.Empty;

    [Id(1)]
    public string Display { get; init; } = string.Empty;

    [Id(2)]
    public string CacheKey { get; init; } = string.Empty;

    /// <summary><c>running</c>, <c>cached</c> or <c>built</c>.</summary>
    [Id(3)]
    public string Status { get; init; } = "running";

    /// <summary>The worker that built the layer; empty while running.</summary>
    [Id(4)]
    public string Worker { get; init; } = string.Empty;

    /// <summary>The layer's digest; null while running or when the step changed nothing.</summary>
    [Id(5)]
    public string? Layer { get; init; }

    [Id(6)]
    public DateTimeOffset Started { get; init; }

    [Id(7)]
    public DateTimeOffset? Finished { get; init; }
}
