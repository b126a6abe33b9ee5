namespace Farm.Dockerfile.Planning;

/// <summary>Farm-wide settings of cache keys.</summary>
public sealed record CacheKeyOptions
{
    /// <summary>
    /// Mixed into every key. Changing it disowns every entry in the action cache at once, e.g. after a poisoned
    /// layer was cached (docs/architecture.md, "Cache keys"). Not a secret, but kept out of logs anyway.
    /// </summary>
    public string Salt { get; init; } = string.Empty;

    /// <summary>
    /// The build's <c>SOURCE_DATE_EPOCH</c>, when it sets one: a layer step's key includes it, since it clamps the
    /// times in the layer (so a build with it never takes a layer written without it, and its digest does not depend
    /// on what the cache held). Null leaves every key as it was.
    /// </summary>
    public DateTimeOffset? SourceDateEpoch { get; init; }

    public override string ToString() => $"CacheKeyOptions {{ Salt = {(Salt.Length == 0 ? "(none)" : "***")} }}";
}
