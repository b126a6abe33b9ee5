namespace Farm.Dockerfile.Planning;

/// <summary>The cache key of one layer step.</summary>
/// <param name="StepId">The step's id in the build graph (<c>s{stage}/{n}</c>).</param>
/// <param name="StageIndex">The stage the step belongs to.</param>
/// <param name="Key"><c>sha256:...</c>, see <see cref="CacheKeyWriter"/> for the format.</param>
/// <param name="ParentKey">
/// The key of the layer below that went into <paramref name="Key"/>: the previous layer step (or the stack below a
/// <c>COPY --link</c> step), or the stage's base key; for a <c>COPY --link</c> step itself the fixed
/// <c>link:empty-root</c>, as its layer is made on an empty root.
/// </param>
/// <param name="Cacheable">
/// False when the step's output is not determined by its inputs (ADD of a URL without <c>--checksum</c>, a git
/// source, an unpinned base image) or sits on such a step: never look it up and never record it.
/// </param>
/// <param name="NotCacheableReason">Why <paramref name="Cacheable"/> is false; null when it is true.</param>
public sealed record StepCacheKey(string StepId, int StageIndex, string Key, string ParentKey, bool Cacheable, string? NotCacheableReason)
{
    /// <summary>What went into the key, as digests; null unless the plan was asked to record it (<see cref="KeyInputsOptions"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public StepKeyInputs? Inputs { get; init; }
}

/// <summary>The cache keys of a build graph.</summary>
/// <param name="Steps">One per layer step of the stages to build, in graph order.</param>
/// <param name="Stages">One per stage to build.</param>
public sealed record CacheKeyPlan(IReadOnlyList<StepCacheKey> Steps, IReadOnlyList<StageCacheKey> Stages)
{
    /// <summary>The key of a layer step, or null when the id names no layer step.</summary>
    public StepCacheKey? Find(string stepId) => Steps.FirstOrDefault(s => s.StepId == stepId);

    /// <summary>The key of a stage, or null when the stage is not built.</summary>
    public StageCacheKey? Stage(int index) => Stages.FirstOrDefault(s => s.StageIndex == index);
}

/// <summary>The keys at both ends of a stage.</summary>
/// <param name="StageIndex">The stage's index.</param>
/// <param name="BaseKey">What the first step builds on: the base image (platform + digest), scratch, or the base stage.</param>
/// <param name="FinalKey">The key of the last layer step, or <paramref name="BaseKey"/> when the stage has none;
/// <c>COPY --from</c> this stage and stages built on it chain from here.</param>
/// <param name="Cacheable">False when the stage's filesystem is not determined by its inputs.</param>
/// <param name="NotCacheableReason">Why, when not cacheable.</param>
public sealed record StageCacheKey(int StageIndex, string BaseKey, string FinalKey, bool Cacheable, string? NotCacheableReason);
