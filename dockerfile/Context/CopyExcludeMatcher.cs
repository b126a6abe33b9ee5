using Farm.Contracts;

namespace Farm.Dockerfile.Context;

/// <summary>
/// <c>COPY --exclude</c> patterns, with .dockerignore rules: components matched with Go's filepath.Match,
/// <c>**</c> spans any number of directories, a pattern that matches a directory excludes everything in it,
/// and a later <c>!pattern</c> re-includes. See https://docs.docker.com/reference/dockerfile/#copy---exclude.
/// </summary>
/// <remarks>Shared by the worker and the coordinator: both must exclude the same files, or a cache key would not describe what the worker copied.</remarks>
public sealed class CopyExcludeMatcher
{
    private readonly (string[] Parts, bool Negated)[] _patterns;

    public CopyExcludeMatcher(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var list = new List<(string[], bool)>();
        foreach (var raw in patterns)
        {
            var pattern = raw.Trim();
            var negated = pattern.StartsWith('!');
            if (negated)
            {
                pattern = pattern[1..];
            }

            var cleaned = ContextPath.Clean(pattern);
            if (cleaned.Length == 0)
            {
                continue;
            }

            var parts = ContextPath.Split(cleaned);
            foreach (var part in parts)
            {
                if (part != "**")
                {
                    try
                    {
                        ContextGlob.Validate(part);
                    }
                    catch (FormatException e)
                    {
                        throw new BuildContextException(FarmErrorCodes.CopyOption, $"--exclude pattern '{raw}' is malformed ({e.Message}); fix the pattern", e);
                    }
                }
            }

            list.Add((parts, negated));
        }

        _patterns = [.. list];
    }

    public bool IsEmpty => _patterns.Length == 0;

    /// <summary>Whether any of the given relative paths (several views of one file) is excluded.</summary>
    public bool IsExcluded(params ReadOnlySpan<string> relativePaths)
    {
        foreach (var path in relativePaths)
        {
            if (path.Length > 0 && IsExcluded(path))
            {
                return true;
            }
        }

        return false;
    }

    private bool IsExcluded(string relativePath)
    {
        var parts = ContextPath.Split(relativePath);
        var excluded = false;
        foreach (var (pattern, negated) in _patterns)
        {
            // A pattern excludes a path when it matches the path or one of its parent directories.
            for (var n = 1; n <= parts.Length; n++)
            {
                if (Match(pattern, 0, parts, 0, n))
                {
                    excluded = !negated;
                    break;
                }
            }
        }

        return excluded;
    }

    private static bool Match(string[] pattern, int pi, string[] parts, int si, int count)
    {
        if (pi == pattern.Length)
        {
            return si == count;
        }

        if (pattern[pi] == "**")
        {
            for (var k = si; k <= count; k++)
            {
                if (Match(pattern, pi + 1, parts, k, count))
                {
                    return true;
                }
            }

            return false;
        }

        return si < count && ContextGlob.IsMatch(pattern[pi], parts[si]) && Match(pattern, pi + 1, parts, si + 1, count);
    }
}
