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

    /// <summary>
    /// The build's tenant on a shared farm, or null: mixed into the key of a RUN step that mounts a secret, an SSH agent
    /// or a cache (what it makes may depend on what only that tenant has); every other key is the same for all tenants,
    /// so they share those layers. Null leaves every key as it was.
    /// </summary>
    public string? Tenant { get; init; }

    /// <summary>
    /// The commit each <c>ADD</c> git source of the build named when it was planned (source as written → commit id): the
    /// step's key is of that commit, and the worker checks out exactly it. A git source missing here is not cacheable.
    /// </summary>
    public IReadOnlyDictionary<string, string>? GitCommits { get; init; }

    public override string ToString() => $"CacheKeyOptions {{ Salt = {(Salt.Length == 0 ? "(none)" : "***")} }}";
}
