namespace Farm.Dockerfile.Ignore;

/// <summary>One compiled <c>.dockerignore</c> pattern.</summary>
/// <remarks>
/// <para>See https://docs.docker.com/reference/dockerfile/#dockerignore-file. The semantics are moby/patternmatcher's
/// (the matcher BuildKit vendors): <c>*</c> and <c>?</c> never cross '/', <c>**</c> spans any number of directories,
/// <c>[...]</c> classes with ranges and <c>^</c> negation, <c>\</c> escapes the next character. Three shapes are
/// compared as plain strings, like upstream: no wildcard (equality), a trailing <c>**</c> only (prefix, so
/// <c>a**</c> matches <c>abc/d</c>) and a leading <c>**</c> with no other wildcard (suffix, so <c>**file</c>
/// matches <c>myfile</c>).</para>
/// <para>Written by hand rather than translated to a regex so that a class never depends on a regex dialect:
/// <c>\d</c> means the letter d, as in Go's filepath.Match which validates the pattern upstream.</para>
/// </remarks>
public sealed class IgnorePattern
{
    private readonly Kind _kind;
    private readonly Token[] _tokens;

    private IgnorePattern(string text, bool exclusion, int line, Kind kind, Token[] tokens)
    {
        Text = text;
        IsException = exclusion;
        Line = line;
        _kind = kind;
        _tokens = tokens;
    }

    private enum Kind
    {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }

    private enum TokenKind
    {
        Literal,
        AnyInSegment, // *   : any run of runes but '/'
        OneInSegment, // ?   : one rune but '/'
        Class,        // [..]: one rune in (or not in) the ranges; may be '/', as in the regex upstream builds
        AnyDirs,      // **/ : nothing, or anything ending in '/'
        AnyRest,      // ** at the end: anything
    }

    /// <summary>The cleaned pattern, without the leading <c>!</c> of an exception.</summary>
    public string Text { get; }

    /// <summary>True for a <c>!pattern</c> line, which re-includes what earlier lines excluded.</summary>
    public bool IsException { get; }

    /// <summary>1-based line in the ignore file, 0 when unknown.</summary>
    public int Line { get; }

    /// <inheritdoc/>
    public override string ToString() => IsException ? "!" + Text : Text;

    /// <summary>Cleans and compiles one pattern as moby/patternmatcher's <c>New</c> does.</summary>
    /// <returns>Null for a pattern that is empty after trimming (upstream skips it).</returns>
    /// <exception cref="InvalidIgnorePatternException">The pattern is malformed.</exception>
    public static IgnorePattern? Compile(string pattern, int line = 0, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var trimmed = pattern.Trim();
        if (trimmed.Length == 0)
        {
            return null;
        }

        var cleaned = GoPath.Clean(trimmed);
        var exclusion = false;
        if (cleaned[0] == '!')
        {
            if (cleaned.Length == 1)
            {
                throw new InvalidIgnorePatternException(pattern, "'!' alone names nothing to re-include; write '!path'", line, sourceName);
            }

            exclusion = true;
            cleaned = cleaned[1..];
        }

        var runes = cleaned.EnumerateRunes().Select(rune => rune.Value).ToArray();
        var problem = Validate(runes);
        if (problem is not null)
        {
            throw new InvalidIgnorePatternException(pattern, problem, line, sourceName);
        }

        var (kind, tokens) = Build(runes);
        return new IgnorePattern(cleaned, exclusion, line, kind, tokens);
    }

    /// <summary>True when the whole of <paramref name="path"/> (cleaned, '/'-separated, relative) matches.</summary>
    public bool IsMatch(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        switch (_kind)
        {
            case Kind.Exact:
                return string.Equals(path, Text, StringComparison.Ordinal);
            case Kind.Prefix:
                return path.StartsWith(Text[..^2], StringComparison.Ordinal);
            case Kind.Suffix:
            {
                var suffix = Text[2..];
                return path.EndsWith(suffix, StringComparison.Ordinal)
                    || (suffix.Length > 0 && suffix[0] == '/' && string.Equals(path, suffix[1..], StringComparison.Ordinal));
            }

            default:
                return new GlobRun(_tokens, ToRunes(path), prefixOnly: false).Run();
        }
    }

    /// <summary>
    /// True when some path that starts with <paramref name="prefix"/> could match. Conservative: it may say true
    /// for a pattern that cannot match, never false for one that can.
    /// </summary>
    public bool CouldMatchPathStartingWith(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        switch (_kind)
        {
            case Kind.Exact:
                return Text.StartsWith(prefix, StringComparison.Ordinal);
            case Kind.Prefix:
            {
                var fixedPart = Text[..^2];
                return fixedPart.StartsWith(prefix, StringComparison.Ordinal) || prefix.StartsWith(fixedPart, StringComparison.Ordinal);
            }

            case Kind.Suffix:
                // prefix + suffix always ends with the suffix.
                return true;
            default:
                return new GlobRun(_tokens, ToRunes(prefix), prefixOnly: true).Run();
        }
    }

    private static int[] ToRunes(string text) => text.EnumerateRunes().Select(rune => rune.Value).ToArray();

    // The syntax check of Go's filepath.Match, which moby/patternmatcher runs on every pattern.
    private static string? Validate(int[] p)
    {
        var i = 0;
        while (i < p.Length)
        {
            switch (p[i])
            {
                case '\\':
                    if (i + 1 >= p.Length)
                    {
                        return "it ends with the escape character '\\'";
                    }

                    i += 2;
                    break;
                case '[':
                {
                    var problem = ParseClass(p, ref i, out _);
                    if (problem is not null)
                    {
                        return problem;
                    }

                    break;
                }

                default:
                    i++;
                    break;
            }
        }

        return null;
    }

    // Parses the class that starts at p[i] == '['; leaves i after the closing ']'.
    private static string? ParseClass(int[] p, ref int i, out Token token)
    {
        token = default;
        i++;
        var negated = false;
        if (i < p.Length && p[i] == '^')
        {
            negated = true;
            i++;
        }

        var ranges = new List<(int Lo, int Hi)>();
        while (true)
        {
            if (i < p.Length && p[i] == ']' && ranges.Count > 0)
            {
                i++;
                break;
            }

            var problem = ReadClassChar(p, ref i, out var lo);
            if (problem is not null)
            {
                return problem;
            }

            var hi = lo;
            if (p[i] == '-')
            {
                i++;
                problem = ReadClassChar(p, ref i, out hi);
                if (problem is not null)
                {
                    return problem;
                }

                if (hi < lo)
                {
                    return $"the range '{char.ConvertFromUtf32(lo)}-{char.ConvertFromUtf32(hi)}' in a character class is reversed";
                }
            }

            ranges.Add((lo, hi));
        }

        token = new Token(TokenKind.Class, 0, negated, [.. ranges]);
        return null;
    }

    // One class member; like filepath.Match, a class needs something after it (at least the closing ']').
    private static string? ReadClassChar(int[] p, ref int i, out int value)
    {
        value = 0;
        if (i >= p.Length)
        {
            return "a character class '[' is not closed with ']'";
        }

        if (p[i] is '-' or ']')
        {
            return $"'{(char)p[i]}' must be escaped as '\\{(char)p[i]}' at that place in a character class";
        }

        if (p[i] == '\\')
        {
            i++;
            if (i >= p.Length)
            {
                return "a character class '[' is not closed with ']'";
            }
        }

        value = p[i++];
        return i >= p.Length ? "a character class '[' is not closed with ']'" : null;
    }

    // Mirrors how moby/patternmatcher picks a match type while translating the pattern.
    private static (Kind Kind, Token[] Tokens) Build(int[] p)
    {
        var tokens = new List<Token>();
        var kind = Kind.Exact;
        var pos = 0;
        for (var index = 0; pos < p.Length; index++)
        {
            var ch = p[pos++];
            switch (ch)
            {
                case '*' when pos < p.Length && p[pos] == '*':
                    pos++;
                    if (pos < p.Length && p[pos] == '/')
                    {
                        pos++;
                    }

                    if (pos >= p.Length)
                    {
                        if (kind == Kind.Exact)
                        {
                            kind = Kind.Prefix;
                        }
                        else
                        {
                            tokens.Add(new Token(TokenKind.AnyRest));
                            kind = Kind.Glob;
                        }
                    }
                    else
                    {
                        tokens.Add(new Token(TokenKind.AnyDirs));
                        kind = Kind.Glob;
                    }

                    if (index == 0)
                    {
                        kind = Kind.Suffix;
                    }

                    break;
                case '*':
                    tokens.Add(new Token(TokenKind.AnyInSegment));
                    kind = Kind.Glob;
                    break;
                case '?':
                    tokens.Add(new Token(TokenKind.OneInSegment));
                    kind = Kind.Glob;
                    break;
                case '\\':
                    tokens.Add(new Token(TokenKind.Literal, p[pos++]));
                    kind = Kind.Glob;
                    break;
                case '[':
                {
                    var at = pos - 1;
                    ParseClass(p, ref at, out var token);
                    pos = at;
                    tokens.Add(token);
                    kind = Kind.Glob;
                    break;
                }

                case ']':
                    tokens.Add(new Token(TokenKind.Literal, ch));
                    kind = Kind.Glob;
                    break;
                default:
                    tokens.Add(new Token(TokenKind.Literal, ch));
                    break;
            }
        }

        if (kind == Kind.Prefix)
        {
            // A pattern that is exact up to a trailing ** keeps its literal tokens, which the prefix test ignores.
            tokens.Add(new Token(TokenKind.AnyRest));
        }

        return (kind, [.. tokens]);
    }

    private readonly record struct Token(TokenKind Kind, int Value = 0, bool Negated = false, (int Lo, int Hi)[]? Ranges = null)
    {
        public bool ClassContains(int rune)
        {
            var inside = false;
            foreach (var (lo, hi) in Ranges!)
            {
                if (rune >= lo && rune <= hi)
                {
                    inside = true;
                    break;
                }
            }

            return inside != Negated;
        }
    }

    /// <summary>Anchored matching of tokens against runes, memoised so that stars cannot blow up.</summary>
    private sealed class GlobRun(Token[] tokens, int[] text, bool prefixOnly)
    {
        private readonly byte[] _memo = new byte[(tokens.Length + 1) * (text.Length + 1)];

        public bool Run() => Match(0, 0);

        private bool Match(int t, int s)
        {
            if (prefixOnly && s == text.Length)
            {
                // The whole prefix was consumed; whatever tokens remain can be satisfied by some continuation.
                return true;
            }

            if (t == tokens.Length)
            {
                return s == text.Length;
            }

            var slot = (t * (text.Length + 1)) + s;
            if (_memo[slot] != 0)
            {
                return _memo[slot] == 1;
            }

            var result = Step(t, s);
            _memo[slot] = result ? (byte)1 : (byte)2;
            return result;
        }

        private bool Step(int t, int s)
        {
            var token = tokens[t];
            switch (token.Kind)
            {
                case TokenKind.Literal:
                    return s < text.Length && text[s] == token.Value && Match(t + 1, s + 1);
                case TokenKind.OneInSegment:
                    return s < text.Length && text[s] != '/' && Match(t + 1, s + 1);
                case TokenKind.Class:
                    return s < text.Length && token.ClassContains(text[s]) && Match(t + 1, s + 1);
                case TokenKind.AnyInSegment:
                    for (var k = s; ; k++)
                    {
                        if (Match(t + 1, k))
                        {
                            return true;
                        }

                        if (k >= text.Length || text[k] == '/')
                        {
                            return false;
                        }
                    }

                case TokenKind.AnyDirs:
                    if (Match(t + 1, s))
                    {
                        return true;
                    }

                    // Upstream's regex is (.*/)? and its '.' stops at a newline.
                    for (var k = s; k < text.Length && text[k] != '\n'; k++)
                    {
                        if (text[k] == '/' && Match(t + 1, k + 1))
                        {
                            return true;
                        }
                    }

                    return false;
                default: // AnyRest: .*
                    for (var k = s; ; k++)
                    {
                        if (Match(t + 1, k))
                        {
                            return true;
                        }

                        if (k >= text.Length || text[k] == '\n')
                        {
                            return false;
                        }
                    }
            }
        }
    }
}
