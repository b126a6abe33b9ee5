using System.Text;
using System.Text.RegularExpressions;

namespace Farm.Dockerfile.Expansion;

/// <summary>
/// The shell patterns of <c>${VAR#pat}</c>, <c>${VAR%pat}</c> and <c>${VAR/pat/repl}</c>: <c>*</c> and <c>?</c>
/// wildcards, no bracket expressions, as BuildKit implements them.
/// </summary>
/// <remarks>
/// Written by hand because the semantics are BuildKit's (Go regexp, leftmost-first, rune based), which .NET's
/// <see cref="Regex"/> reproduces once the pattern is translated; the translation and Go's replace-all loop are ours.
/// </remarks>
internal static class ShellPattern
{
    // Go's '.' matches one rune except '\n'; a .NET '.' would match half of a surrogate pair.
    private const string AnyRune = @"(?:[\uD800-\uDBFF][\uDC00-\uDFFF]|.)";

    public static string TrimPrefix(string pattern, string value, bool greedy, string word)
    {
        var match = Compile(pattern, greedy, anchored: true, word).Match(value);
        return match.Success ? value[(match.Index + match.Length)..] : value;
    }

    public static string TrimSuffix(string pattern, string value, bool greedy, string word)
    {
        // A regex finds the leftmost match, not the shortest rightmost one: reverse both sides and trim a prefix.
        var reversed = TrimPrefix(ReversePattern(pattern), ReverseRunes(value), greedy, word);
        return ReverseRunes(reversed);
    }

    public static string Replace(string pattern, string replacement, string value, bool all, string word)
    {
        var regex = Compile(pattern, greedy: true, anchored: false, word);
        if (!all)
        {
            var first = regex.Match(value);
            return first.Success
                ? string.Concat(value.AsSpan(0, first.Index), replacement, value.AsSpan(first.Index + first.Length))
                : value;
        }

        // Go's ReplaceAll drops an empty match that abuts the previous match; Regex.Replace keeps it.
        var result = new StringBuilder(value.Length);
        var lastMatchEnd = 0;
        var searchPos = 0;
        while (searchPos <= value.Length)
        {
            var match = regex.Match(value, searchPos);
            if (!match.Success)
            {
                break;
            }

            var start = match.Index;
            var end = match.Index + match.Length;
            result.Append(value, lastMatchEnd, start - lastMatchEnd);
            if (end > lastMatchEnd || start == 0)
            {
                result.Append(replacement);
            }

            lastMatchEnd = end;
            var width = searchPos < value.Length && char.IsHighSurrogate(value[searchPos]) && searchPos + 1 < value.Length ? 2 : 1;
            if (searchPos + width > end)
            {
                searchPos += width;
            }
            else if (searchPos + 1 > end)
            {
                searchPos++;
            }
            else
            {
                searchPos = end;
            }
        }

        if (lastMatchEnd < value.Length)
        {
            result.Append(value, lastMatchEnd, value.Length - lastMatchEnd);
        }

        return result.ToString();
    }

    private static Regex Compile(string pattern, bool greedy, bool anchored, string word)
    {
        var runes = pattern.EnumerateRunes().ToArray();
        var regex = new StringBuilder(pattern.Length + 8);
        if (anchored)
        {
            regex.Append('^');
        }

        for (var i = 0; i < runes.Length; i++)
        {
            var rune = runes[i];
            switch (rune.Value)
            {
                case '*':
                    regex.Append(greedy ? ".*" : ".*?");
                    break;
                case '?':
                    regex.Append(AnyRune);
                    break;
                case '\\':
                    if (i + 1 < runes.Length && runes[i + 1].Value is '}' or '/')
                    {
                        // Only there to keep '}' or '/' from ending the ${...} part; not part of the pattern.
                        break;
                    }

                    if (i + 1 >= runes.Length)
                    {
                        throw new SubstitutionPatternException(pattern, "it ends with an escape character", word);
                    }

                    var escaped = runes[++i];
                    if (escaped.Value is not ('*' or '?' or '\\'))
                    {
                        throw new SubstitutionPatternException(pattern, $"invalid escape '\\{escaped}'", word);
                    }

                    regex.Append(Regex.Escape(escaped.ToString()));
                    break;
                default:
                    regex.Append(Regex.Escape(rune.ToString()));
                    break;
            }
        }

        return new Regex(regex.ToString(), RegexOptions.CultureInvariant);
    }

    // Reverses the pattern but keeps each escape in front of the character it escapes: a\*c -> c\*a.
    internal static string ReversePattern(string pattern)
    {
        var runes = pattern.EnumerateRunes().ToArray();
        var tokens = new List<string>(runes.Length);
        for (var i = 0; i < runes.Length; i++)
        {
            if (runes[i].Value == '\\' && i + 1 < runes.Length)
            {
                tokens.Add(string.Concat(runes[i].ToString(), runes[i + 1].ToString()));
                i++;
            }
            else
            {
                tokens.Add(runes[i].ToString());
            }
        }

        tokens.Reverse();
        return string.Concat(tokens);
    }

    internal static string ReverseRunes(string value)
    {
        var runes = value.EnumerateRunes().ToArray();
        Array.Reverse(runes);
        var builder = new StringBuilder(value.Length);
        foreach (var rune in runes)
        {
            builder.Append(rune.ToString());
        }

        return builder.ToString();
    }
}
