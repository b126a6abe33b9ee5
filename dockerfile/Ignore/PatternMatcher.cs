namespace Farm.Dockerfile.Ignore;

/// <summary>
/// Decides which paths of a build context a <c>.dockerignore</c> excludes: patterns apply in order, a later
/// <c>!exception</c> re-includes what an earlier pattern excluded, and a path is excluded when it or one of its
/// parent directories matches.
/// </summary>
/// <remarks>
/// See https://docs.docker.com/reference/dockerfile/#dockerignore-file. The rules are moby/patternmatcher's
/// <c>MatchesOrParentMatches</c>. Immutable and safe to share between threads.
/// </remarks>
public sealed class PatternMatcher
{
    private readonly IgnorePattern[] _patterns;

    /// <summary>Compiles <paramref name="entries"/> in order.</summary>
    /// <exception cref="InvalidIgnorePatternException">A pattern is malformed; the message names its line.</exception>
    public PatternMatcher(IEnumerable<DockerIgnoreEntry> entries, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var patterns = new List<IgnorePattern>();
        foreach (var entry in entries)
        {
            var pattern = IgnorePattern.Compile(entry.Pattern, entry.Line, sourceName);
            if (pattern is not null)
            {
                patterns.Add(pattern);
            }
        }

        _patterns = [.. patterns];
        HasExceptions = _patterns.Any(pattern => pattern.IsException);
    }

    /// <summary>A matcher that excludes nothing.</summary>
    public static PatternMatcher Empty { get; } = new([]);

    /// <summary>The compiled patterns, in order; empty lines are gone.</summary>
    public IReadOnlyList<IgnorePattern> Patterns => _patterns;

    /// <summary>True when some pattern is a <c>!</c> exception.</summary>
    public bool HasExceptions { get; }

    /// <summary>Compiles patterns given as plain strings (line numbers unknown).</summary>
    public static PatternMatcher Create(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        return new PatternMatcher(patterns.Select(pattern => new DockerIgnoreEntry(pattern, 0)));
    }

    /// <summary>
    /// True when <paramref name="relativePath"/> ('/'-separated, relative to the context root) is excluded from the
    /// context. The context root itself is never excluded.
    /// </summary>
    public bool Matches(string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        var file = GoPath.Clean(relativePath);
        if (file == ".")
        {
            return false;
        }

        var parent = GoPath.Dir(file);
        var parentDirs = parent == "." ? [] : parent.Split('/');

        var matched = false;
        foreach (var pattern in _patterns)
        {
            // An include only matters while the path is not yet excluded, an exception only once it is.
            if (pattern.IsException != matched)
            {
                continue;
            }

            var match = pattern.IsMatch(file);
            for (var i = 1; !match && i <= parentDirs.Length; i++)
            {
                match = pattern.IsMatch(string.Join('/', parentDirs, 0, i));
            }

            if (match)
            {
                matched = !pattern.IsException;
            }
        }

        return matched;
    }

    /// <summary>
    /// True when a context walk may skip <paramref name="relativeDirectory"/> without looking inside: the directory
    /// is excluded and no exception pattern could re-include anything under it.
    /// </summary>
    /// <remarks>
    /// Sound because a path under an excluded directory matches every pattern the directory matches (the parent
    /// rule); only an exception that matches something below the directory can flip the outcome. The check is
    /// conservative: with an exception such as <c>!**/keep</c> no excluded directory is skipped.
    /// </remarks>
    public bool CanSkipDirectory(string relativeDirectory)
    {
        if (!Matches(relativeDirectory))
        {
            return false;
        }

        var dir = GoPath.Clean(relativeDirectory);
        var below = dir + "/";
        return !_patterns.Any(pattern => pattern.IsException && pattern.CouldMatchPathStartingWith(below));
    }
}
