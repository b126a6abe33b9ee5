namespace Farm.Dockerfile.Context;

/// <summary>
/// Go's <c>path/filepath.Match</c> for one path component, which is what Docker uses for COPY/ADD wildcards:
/// <c>*</c> (any run of characters), <c>?</c> (one character), <c>[a-z]</c> and <c>[^a-z]</c> classes, and
/// <c>\</c> escapes. Written by hand because .NET's globbing (Microsoft.Extensions.FileSystemGlobbing) has
/// other rules: no classes, no escapes.
/// </summary>
/// <remarks>Shared by the worker (which copies) and the coordinator (which keys what would be copied).</remarks>
public static class ContextGlob
{
    /// <summary>Whether the pattern uses any wildcard syntax.</summary>
    public static bool HasMeta(string pattern) => pattern.AsSpan().IndexOfAny("*?[\\") >= 0;

    /// <summary>Matches a whole name against a pattern component.</summary>
    /// <exception cref="FormatException">The pattern is malformed (Go's ErrBadPattern).</exception>
    public static bool IsMatch(string pattern, string name)
    {
        Validate(pattern);
        return Match(pattern, 0, name, 0);
    }

    /// <summary>Throws <see cref="FormatException"/> when a pattern is malformed, even if nothing would be compared.</summary>
    public static void Validate(string pattern)
    {
        for (var i = 0; i < pattern.Length; i++)
        {
            switch (pattern[i])
            {
                case '\\':
                    if (++i >= pattern.Length)
                    {
                        throw new FormatException($"pattern '{pattern}' ends with a lone backslash");
                    }

                    break;
                case '[':
                    i = ClassEnd(pattern, i + 1);
                    break;
            }
        }
    }

    private static bool Match(string p, int pi, string s, int si)
    {
        while (pi < p.Length)
        {
            switch (p[pi])
            {
                case '*':
                    while (pi < p.Length && p[pi] == '*')
                    {
                        pi++;
                    }

                    if (pi == p.Length)
                    {
                        return s.IndexOf('/', si) < 0;
                    }

                    for (var k = si; k <= s.Length; k++)
                    {
                        if (Match(p, pi, s, k))
                        {
                            return true;
                        }

                        if (k < s.Length && s[k] == '/')
                        {
                            return false;
                        }
                    }

                    return false;
                case '?':
                    if (si >= s.Length || s[si] == '/')
                    {
                        return false;
                    }

                    pi++;
                    si++;
                    break;
                case '[':
                    if (si >= s.Length || s[si] == '/')
                    {
                        return false;
                    }

                    var end = ClassEnd(p, pi + 1);
                    if (!ClassMatches(p, pi + 1, end, s[si]))
                    {
                        return false;
                    }

                    pi = end + 1;
                    si++;
                    break;
                case '\\':
                    pi++;
                    goto default;
                default:
                    if (si >= s.Length || s[si] != p[pi])
                    {
                        return false;
                    }

                    pi++;
                    si++;
                    break;
            }
        }

        return si == s.Length;
    }

    /// <summary>Index of the closing bracket of a class that starts after '[' at <paramref name="start"/>.</summary>
    private static int ClassEnd(string p, int start)
    {
        var i = start;
        if (i < p.Length && p[i] == '^')
        {
            i++;
        }

        var first = true;
        while (true)
        {
            if (i >= p.Length)
            {
                throw new FormatException($"pattern '{p}' has an unclosed '['");
            }

            if (p[i] == ']' && !first)
            {
                return i;
            }

            first = false;
            i = ClassChar(p, i, out _);
            if (i < p.Length && p[i] == '-')
            {
                i = ClassChar(p, i + 1, out _);
            }

        }
    }

    private static int ClassChar(string p, int i, out char c)
    {
        if (i >= p.Length || p[i] is '-' or ']')
        {
            throw new FormatException($"pattern '{p}' has a malformed character class");
        }

        if (p[i] == '\\')
        {
            i++;
            if (i >= p.Length)
            {
                throw new FormatException($"pattern '{p}' ends with a lone backslash");
            }
        }

        c = p[i];
        return i + 1;
    }

    private static bool ClassMatches(string p, int start, int end, char c)
    {
        var i = start;
        var negated = false;
        if (p[i] == '^')
        {
            negated = true;
            i++;
        }

        var matched = false;
        while (i < end)
        {
            i = ClassChar(p, i, out var lo);
            var hi = lo;
            if (i < end && p[i] == '-')
            {
                i = ClassChar(p, i + 1, out hi);
            }

            if (lo <= c && c <= hi)
            {
                matched = true;
            }
        }

        return matched != negated;
    }
}
