using Farm.Dockerfile.Planning;

namespace Farm.Coordinator.Explain;

/// <summary>Explains the misses of one build against the previous build of its lineage (docs/architecture.md, "Why a step ran").</summary>
/// <param name="plan">The build's keys, recorded with their inputs.</param>
/// <param name="previous">The previous build of the lineage; null when there was none.</param>
/// <param name="noCache">The build was asked for with <c>--no-cache</c>.</param>
public sealed class StepExplainer(CacheKeyPlan plan, BuildKeyInputs? previous, bool noCache)
{
    private readonly IReadOnlyList<StepKeyInputs> _current = [.. plan.Steps.Select(s => s.Inputs).OfType<StepKeyInputs>()];

    /// <summary>The build compared with, if any.</summary>
    public BuildKeyInputs? Previous { get; } = previous;

    /// <summary>Why <paramref name="key"/>'s step runs; null when its inputs were not recorded.</summary>
    public StepExplanation? Explain(StepCacheKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.Inputs is { } inputs
            ? KeyInputsDiff.Explain(inputs, _current, Previous, noCache, key.Cacheable ? null : key.NotCacheableReason)
            : null;
    }
}
