namespace Farm.Dockerfile.Planning;

/// <summary>Farm-wide settings of cache keys.</summary>
public sealed record CacheKeyOptions
{
    /// <summary>
    /// Mixed into every key. Changing it disowns every entry in the action cache at once, e.g. after a poisoned
    /// layer was cached (docs/architecture.md, "Cache keys"). Not a secret, but kept out of logs anyway.
    /// </summary>
    public string Salt { get; init; } = string.Empty;

    public override string ToString() => $"CacheKeyOptions {{ Salt = {(Salt.Length == 0 ? "(none)" : "***")} }}";
}
