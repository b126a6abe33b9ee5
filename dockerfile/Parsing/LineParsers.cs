using System.Text;
using System.Text.Json;

namespace Farm.Dockerfile.Parsing;

/// <summary>The result of splitting one logical line: what <see cref="InstructionNode"/> is built from.</summary>
internal sealed record ParsedLine(
    string Keyword,
    IReadOnlyList<string> Flags,
    string ArgumentText,
    IReadOnlyList<string> Arguments,
    bool IsJson,
    ParsedLine? Inner);

/// <summary>A problem found in a logical line; the parser adds file, line and column.</summary>
internal sealed class LineParseException(string code, string problem) : Exception(problem)
{
    public string Code { get; } = code;
}

/// <summary>
/// Per-instruction argument rules, written to produce the same argument nodes as BuildKit's
/// parser so the dump matches its test corpus byte for byte.
/// </summary>
internal static class LineParsers
{
    public static ParsedLine ParseLine(string line, char escape) => ParseLine(line, escape, insideOnbuild: false);

    private static ParsedLine ParseLine(string line, char escape, bool insideOnbuild)
    {
        var (keyword, rest) = SplitKeyword(line.Trim());
        var (argumentText, flags) = ExtractFlags(rest, escape);
        argumentText = argumentText.Trim();
        var command = keyword.ToLowerInvariant();
        var isJson = false;
        ParsedLine? inner = null;
        IReadOnlyList<string> args;
        switch (command)
        {
            case "add" or "copy" or "volume":
                args = MaybeJsonToList(argumentText, out isJson);
                break;
            case "run" or "cmd" or "entrypoint" or "shell":
                args = MaybeJson(argumentText, out isJson);
                break;
            case "arg":
                args = ParseWords(argumentText, escape);
                break;
            case "env" or "label":
                args = NameValue(argumentText, keyword.ToUpperInvariant(), escape);
                break;
            case "from" or "expose":
                args = SplitWhitespace(argumentText);
                break;
            case "healthcheck":
                args = HealthConfig(argumentText, out isJson);
                break;
            case "maintainer" or "stopsignal" or "user" or "workdir":
                args = argumentText.Length == 0 ? [] : [argumentText];
                break;
            case "onbuild":
                args = [];
                if (insideOnbuild)
                {
                    // Refused here, not only when instructions are typed: a line of 100,000 ONBUILDs would otherwise
                    // be parsed 100,000 levels deep, each level copying the rest of the line.
                    throw new LineParseException(
                        DockerfileErrorCodes.InvalidOnbuild,
                        $"ONBUILD cannot trigger {keyword.ToUpperInvariant()}; only build instructions such as RUN, COPY or ENV can run in a child image");
                }

                if (argumentText.Length > 0)
                {
                    inner = ParseLine(argumentText, escape, insideOnbuild: true);
                }

                break;
            default:
                // BuildKit keeps unknown instructions in the tree with one empty argument; they are
                // rejected later, when instructions are typed, so the dump stays comparable.
                args = [""];
                break;
        }

        return new ParsedLine(keyword, flags, argumentText, args, isJson, inner);
    }

    private static bool IsTokenSpace(char c) => c is ' ' or '\t' or '\v' or '\f' or '\r';

    private static (string Keyword, string Remainder) SplitKeyword(string line)
    {
        var end = 0;
        while (end < line.Length && !IsTokenSpace(line[end]))
        {
            end++;
        }

        var start = end;
        while (start < line.Length && IsTokenSpace(line[start]))
        {
            start++;
        }

        return (line[..end], line[start..]);
    }

    /// <summary>
    /// Takes the leading <c>--flag</c> words off the argument text. Quotes inside a flag word are
    /// removed and the escape character escapes the next character; a bare <c>--</c> ends the flags.
    /// </summary>
    internal static (string Remainder, IReadOnlyList<string> Flags) ExtractFlags(string line, char escape)
    {
        var flags = new List<string>();
        var pos = 0;
        while (true)
        {
            while (pos < line.Length && char.IsWhiteSpace(line[pos]))
            {
                pos++;
            }

            if (pos >= line.Length)
            {
                return ("", flags);
            }

            if (line[pos] != '-' || pos + 1 >= line.Length || line[pos + 1] != '-')
            {
                return (line[pos..], flags);
            }

            var word = new StringBuilder();
            var blankOk = false;
            var quote = '\0';
            for (; pos < line.Length; pos++)
            {
                var c = line[pos];
                if (quote == '\0')
                {
                    if (char.IsWhiteSpace(c))
                    {
                        break;
                    }

                    if (c is '\'' or '"')
                    {
                        quote = c;
                        blankOk = true;
                        continue;
                    }
                }
                else if (c == quote)
                {
                    quote = '\0';
                    continue;
                }

                if (c == escape)
                {
                    if (pos + 1 == line.Length)
                    {
                        continue;
                    }

                    c = line[++pos];
                }

                word.Append(c);
            }

            var text = word.ToString();
            if (text == "--" && pos < line.Length)
            {
                return (line[pos..], flags);
            }

            if (text != "--" && (blankOk || text.Length > 0))
            {
                flags.Add(text);
            }
        }
    }

    /// <summary>
    /// Splits on unquoted whitespace, keeping quotes and escape characters in the words
    /// (they are removed later, by variable expansion).
    /// </summary>
    internal static List<string> ParseWords(string rest, char escape)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        var blankOk = false;
        var quote = '\0';
        for (var pos = 0; pos < rest.Length; pos++)
        {
            var c = rest[pos];
            if (!inWord)
            {
                if (char.IsWhiteSpace(c))
                {
                    continue;
                }

                inWord = true;
            }

            if (quote == '\0')
            {
                if (char.IsWhiteSpace(c))
                {
                    inWord = false;
                    if (blankOk || word.Length > 0)
                    {
                        words.Add(word.ToString());
                    }

                    word.Clear();
                    blankOk = false;
                    continue;
                }

                if (c is '\'' or '"')
                {
                    quote = c;
                    blankOk = true;
                }
                else if (c == escape)
                {
                    if (pos + 1 == rest.Length)
                    {
                        continue;
                    }

                    word.Append(c);
                    c = rest[++pos];
                }

                word.Append(c);
                continue;
            }

            var closing = c == quote;
            // Inside single quotes the escape character is literal, as in a POSIX shell.
            if (c == escape && quote != '\'')
            {
                if (pos + 1 == rest.Length)
                {
                    quote = '\0';
                    continue;
                }

                word.Append(c);
                c = rest[++pos];
            }

            if (closing)
            {
                quote = '\0';
            }

            word.Append(c);
        }

        if (inWord && (blankOk || word.Length > 0))
        {
            words.Add(word.ToString());
        }

        return words;
    }

    private static List<string> NameValue(string rest, string keyword, char escape)
    {
        var words = ParseWords(rest, escape);
        if (words.Count == 0)
        {
            return [];
        }

        if (!words[0].Contains('='))
        {
            var parts = SplitWhitespace(rest, 2);
            if (parts.Count < 2)
            {
                throw new LineParseException(
                    DockerfileErrorCodes.MissingValue,
                    $"{keyword} {parts[0]} has a name but no value; write {keyword} {parts[0]}=value (use {parts[0]}=\"\" for an empty value)");
            }

            return [parts[0], parts[1], ""];
        }

        var args = new List<string>(words.Count * 3);
        foreach (var word in words)
        {
            var eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                throw new LineParseException(
                    DockerfileErrorCodes.MissingEquals,
                    $"{keyword} mixes forms: can't find = in '{word}'; write every pair as name=value (quote values that hold spaces)");
            }

            args.Add(word[..eq]);
            args.Add(word[(eq + 1)..]);
            args.Add("=");
        }

        return args;
    }

    /// <summary>Splits on runs of space, TAB, VT, FF and CR, like BuildKit's whitespace rule.</summary>
    internal static List<string> SplitWhitespace(string rest, int max = int.MaxValue)
    {
        var parts = new List<string>();
        if (rest.Length == 0)
        {
            return parts;
        }

        var start = 0;
        var pos = 0;
        while (pos < rest.Length)
        {
            if (parts.Count == max - 1)
            {
                break;
            }

            if (!IsTokenSpace(rest[pos]))
            {
                pos++;
                continue;
            }

            parts.Add(rest[start..pos]);
            while (pos < rest.Length && IsTokenSpace(rest[pos]))
            {
                pos++;
            }

            start = pos;
        }

        parts.Add(rest[start..]);
        return parts;
    }

    /// <summary>
    /// Decodes a JSON array of strings. Null when the text is not JSON (it is then taken as
    /// shell text); throws when it is a valid JSON array with a non-string element, because
    /// the author clearly meant exec form and would otherwise get a surprising shell command.
    /// </summary>
    internal static List<string>? TryParseJsonArray(string rest)
    {
        rest = rest.TrimStart();
        if (!rest.StartsWith('['))
        {
            return null;
        }

        JsonDocument doc;
        try
        {
            // Go's decoder nests up to 10000 levels; the default 64 would turn deep arrays into shell text.
            doc = JsonDocument.Parse(rest, new JsonDocumentOptions { MaxDepth = 10000 });
        }
        catch (JsonException)
        {
            return null;
        }

        using (doc)
        {
            var values = new List<string>();
            foreach (var element in doc.RootElement.EnumerateArray())
            {
                if (element.ValueKind != JsonValueKind.String)
                {
                    throw new LineParseException(
                        DockerfileErrorCodes.JsonNotStringArray,
                        $"the JSON array holds a non-string element ({element.GetRawText()}); in exec form every element must be a string, e.g. [\"echo\", \"hello\"]");
                }

                try
                {
                    values.Add(element.GetString()!);
                }
                catch (InvalidOperationException)
                {
                    // A lone surrogate escape: Go's decoder turns it into U+FFFD, so do the same.
                    values.Add(element.GetRawText().Trim('"'));
                }
            }

            return values;
        }
    }

    private static List<string> MaybeJson(string rest, out bool isJson)
    {
        isJson = false;
        if (rest.Length == 0)
        {
            return [];
        }

        var json = TryParseJsonArray(rest);
        if (json is not null)
        {
            isJson = true;
            return json;
        }

        return [rest];
    }

    private static List<string> MaybeJsonToList(string rest, out bool isJson)
    {
        var json = TryParseJsonArray(rest);
        isJson = json is not null;
        return json ?? SplitWhitespace(rest);
    }

    private static List<string> HealthConfig(string rest, out bool isJson)
    {
        isJson = false;
        var sep = 0;
        while (sep < rest.Length && !char.IsWhiteSpace(rest[sep]))
        {
            sep++;
        }

        if (sep == 0)
        {
            return [];
        }

        var next = sep;
        while (next < rest.Length && char.IsWhiteSpace(rest[next]))
        {
            next++;
        }

        var result = new List<string> { rest[..sep] };
        result.AddRange(MaybeJson(rest[next..], out isJson));
        return result;
    }
}
