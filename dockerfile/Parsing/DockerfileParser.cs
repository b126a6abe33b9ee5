using System.Text;
using System.Text.RegularExpressions;

namespace Farm.Dockerfile.Parsing;

/// <summary>
/// Reads Dockerfile text into a <see cref="DockerfileAst"/> with BuildKit's rules: parser
/// directives, comments, line continuation with the escape character, heredocs, and the
/// per-instruction argument splitting. Words are not expanded here.
/// See https://docs.docker.com/reference/dockerfile/.
/// </summary>
public static partial class DockerfileParser
{
    private static readonly HashSet<string> KnownDirectives = ["syntax", "escape", "check"];

    /// <summary>Parses a Dockerfile.</summary>
    /// <param name="text">The whole file.</param>
    /// <param name="fileName">Name used in locations and error messages.</param>
    /// <exception cref="DockerfileSyntaxException">The text is not a valid Dockerfile.</exception>
    public static DockerfileAst Parse(string text, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        return new Reader(text, fileName).Read();
    }

    // Go's \s is ASCII-only and excludes VT; keep the same class so the same lines are directives.
    [GeneratedRegex(@"^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\z", RegexOptions.CultureInvariant)]
    private static partial Regex DirectiveRegex();

    [GeneratedRegex(@"^([0-9]*)<<(-?)([^<]*)\z", RegexOptions.CultureInvariant)]
    private static partial Regex HeredocRegex();

    private sealed class Reader(string text, string fileName)
    {
        private readonly string _text = text;
        private readonly string _fileName = fileName;
        private readonly List<(int Start, int Length)> _lines = SplitLines(text);
        private readonly List<ParserDirectiveNode> _directives = [];
        private readonly HashSet<string> _seenDirectives = [];
        private readonly List<DockerfileNode> _nodes = [];
        private readonly List<InstructionNode> _instructions = [];
        private char _escape = '\\';
        private bool _directivesDone;
        private int _next;

        public DockerfileAst Read()
        {
            var comments = new List<string>();
            while (_next < _lines.Count)
            {
                var lineNo = _next + 1;
                var raw = LineText(_next++);
                var leading = CountLeadingWhitespace(raw);
                var stripped = raw[leading..];
                var isComment = stripped.StartsWith('#');
                var directive = CheckDirective(stripped, lineNo, leading + 1);
                var (line, endOfLine) = TrimContinuation(isComment ? "" : stripped);
                if (endOfLine && line.Length == 0)
                {
                    var location = new SourceLocation(lineNo, leading + 1, lineNo);
                    if (directive is not null)
                    {
                        _nodes.Add(directive);
                        comments.Add(stripped[1..].Trim());
                    }
                    else if (isComment)
                    {
                        _nodes.Add(new CommentNode(stripped[1..].Trim(), location));
                        comments.Add(stripped[1..].Trim());
                    }
                    else
                    {
                        _nodes.Add(new BlankLineNode(location));
                    }

                    continue;
                }

                ReadInstruction(line, endOfLine, lineNo, leading + 1, comments);
                comments = [];
            }

            if (_instructions.Count == 0)
            {
                throw Error(DockerfileErrorCodes.NoInstructions, 1, 1,
                    "the Dockerfile has no instruction; start it with FROM <image> (comments and blank lines alone are not a Dockerfile)");
            }

            return new DockerfileAst
            {
                FileName = _fileName,
                EscapeToken = _escape,
                Directives = _directives,
                Nodes = _nodes,
                Instructions = _instructions,
            };
        }

        private void ReadInstruction(string firstLine, bool endOfLine, int startLine, int startColumn, List<string> comments)
        {
            var logical = new StringBuilder(firstLine);
            var innerComments = new List<DockerfileNode>();
            var endLine = startLine;
            while (!endOfLine && _next < _lines.Count)
            {
                var raw = LineText(_next++);
                endLine = _next;
                CheckDirective(raw, endLine, 1);
                var leading = CountLeadingWhitespace(raw);
                if (raw.AsSpan(leading).StartsWith("#"))
                {
                    innerComments.Add(new CommentNode(raw[(leading + 1)..].Trim(), new SourceLocation(endLine, leading + 1, endLine)));
                    continue;
                }

                if (leading == raw.Length)
                {
                    continue;
                }

                (var piece, endOfLine) = TrimContinuation(raw);
                logical.Append(piece);
            }

            var original = logical.ToString();
            ParsedLine parsed;
            try
            {
                parsed = LineParsers.ParseLine(original, _escape);
            }
            catch (LineParseException e)
            {
                throw Error(e.Code, startLine, startColumn, e.Message, e);
            }

            var heredocs = new List<Heredoc>();
            if (CanContainHeredoc(parsed) && original.Contains("<<", StringComparison.Ordinal))
            {
                foreach (var (name, fd, expand, chomp, marker) in HeredocsFromLine(original))
                {
                    var bodyStart = _next + 1;
                    var content = new StringBuilder();
                    var terminated = false;
                    while (_next < _lines.Count)
                    {
                        var index = _next++;
                        endLine = _next;
                        var candidate = LineText(index);
                        if ((chomp ? candidate.TrimStart('\t') : candidate) == name)
                        {
                            terminated = true;
                            break;
                        }

                        content.Append(_text, _lines[index].Start, _lines[index].Length);
                    }

                    if (!terminated)
                    {
                        var (line, column) = Locate(startLine, startColumn, marker);
                        throw Error(DockerfileErrorCodes.UnterminatedHeredoc, line, column,
                            $"unterminated heredoc {marker}: the file ends before a line that holds only {name}; add that line after the heredoc body");
                    }

                    heredocs.Add(new Heredoc(name, fd, expand, chomp, content.ToString(), new SourceLocation(bodyStart, 1, endLine)));
                }
            }

            var location = new SourceLocation(startLine, startColumn, endLine);
            var node = ToNode(parsed, location, original, heredocs, comments);
            _nodes.Add(node);
            _nodes.AddRange(innerComments);
            _instructions.Add(node);
        }

        private InstructionNode ToNode(ParsedLine parsed, SourceLocation location, string original, IReadOnlyList<Heredoc> heredocs, List<string> comments)
        {
            var start = _lines[location.StartLine - 1].Start;
            var last = _lines[location.EndLine - 1];
            var sourceText = _text[start..(last.Start + last.Length)].TrimEnd('\r', '\n');
            return Build(parsed, location, original, sourceText, heredocs, comments);
        }

        private static InstructionNode Build(ParsedLine parsed, SourceLocation location, string original, string sourceText, IReadOnlyList<Heredoc> heredocs, List<string> comments) =>
            new(location)
            {
                Keyword = parsed.Keyword,
                Flags = parsed.Flags,
                Arguments = parsed.Arguments,
                ArgumentText = parsed.ArgumentText,
                IsJson = parsed.IsJson,
                Inner = parsed.Inner is null ? null : Build(parsed.Inner, location, parsed.ArgumentText, sourceText, heredocs, []),
                Heredocs = heredocs,
                Original = original,
                SourceText = sourceText,
                PrecedingComments = comments,
            };

        private static bool CanContainHeredoc(ParsedLine parsed)
        {
            if (parsed.Keyword.Equals("onbuild", StringComparison.OrdinalIgnoreCase) && parsed.Inner is not null)
            {
                parsed = parsed.Inner;
            }

            return !parsed.IsJson && parsed.Keyword.ToLowerInvariant() is "run" or "copy" or "add";
        }

        /// <summary>
        /// Finds heredoc markers among the shell words of the line. Words are split as a shell
        /// would (quotes group, backslash escapes), so <c>"&lt;&lt;EOF"</c> in quotes is not a marker.
        /// </summary>
        private static List<(string Name, int Fd, bool Expand, bool Chomp, string Marker)> HeredocsFromLine(string line)
        {
            var result = new List<(string, int, bool, bool, string)>();
            foreach (var word in ShellWords(line))
            {
                var match = HeredocRegex().Match(word);
                if (!match.Success || match.Groups[3].Value.Length == 0)
                {
                    continue;
                }

                var rawName = match.Groups[3].Value;
                var name = Unquote(rawName);
                if (name is null)
                {
                    continue;
                }

                _ = int.TryParse(match.Groups[1].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var fd);
                var expand = !rawName.Contains('"') && !rawName.Contains('\'');
                result.Add((name, fd, expand, match.Groups[2].Value == "-", word));
            }

            return result;
        }

        /// <summary>Splits on unquoted whitespace, keeping quotes and backslashes in the words.</summary>
        private static List<string> ShellWords(string line)
        {
            var words = new List<string>();
            var word = new StringBuilder();
            var inWord = false;
            for (var i = 0; i < line.Length; i++)
            {
                var c = line[i];
                if (char.IsWhiteSpace(c))
                {
                    if (inWord)
                    {
                        words.Add(word.ToString());
                        word.Clear();
                        inWord = false;
                    }

                    continue;
                }

                inWord = true;
                if (c == '\\' && i + 1 < line.Length)
                {
                    word.Append(c).Append(line[++i]);
                }
                else if (c is '\'' or '"')
                {
                    var close = line.IndexOf(c, i + 1);
                    if (c == '"')
                    {
                        close = i + 1;
                        while (close < line.Length && line[close] != '"')
                        {
                            close += line[close] == '\\' ? 2 : 1;
                        }
                    }

                    close = Math.Min(close < 0 ? line.Length - 1 : close, line.Length - 1);
                    word.Append(line, i, close - i + 1);
                    i = close;
                }
                else
                {
                    word.Append(c);
                }
            }

            if (inWord)
            {
                words.Add(word.ToString());
            }

            return words;
        }

        /// <summary>Removes shell quoting from a heredoc terminator; null when it is not one word.</summary>
        private static string? Unquote(string raw)
        {
            var sb = new StringBuilder();
            for (var i = 0; i < raw.Length; i++)
            {
                var c = raw[i];
                if (c == '\'')
                {
                    var close = raw.IndexOf('\'', i + 1);
                    if (close < 0)
                    {
                        return null;
                    }

                    sb.Append(raw, i + 1, close - i - 1);
                    i = close;
                }
                else if (c == '"')
                {
                    var j = i + 1;
                    for (; j < raw.Length && raw[j] != '"'; j++)
                    {
                        if (raw[j] == '\\' && j + 1 < raw.Length && raw[j + 1] is '"' or '\\' or '$' or '`')
                        {
                            j++;
                        }

                        sb.Append(raw[j]);
                    }

                    if (j >= raw.Length)
                    {
                        return null;
                    }

                    i = j;
                }
                else if (c == '\\' && i + 1 < raw.Length)
                {
                    sb.Append(raw[++i]);
                }
                else if (char.IsWhiteSpace(c))
                {
                    return null;
                }
                else
                {
                    sb.Append(c);
                }
            }

            return sb.Length == 0 ? null : sb.ToString();
        }

        private ParserDirectiveNode? CheckDirective(string line, int lineNo, int column)
        {
            if (_directivesDone)
            {
                return null;
            }

            var match = DirectiveRegex().Match(line);
            var name = match.Success ? match.Groups[1].Value.ToLowerInvariant() : "";
            if (!KnownDirectives.Contains(name))
            {
                // Directives are only honoured before anything else, as BuildKit does: the first
                // line that is not a known directive (comment, blank line, instruction) ends them.
                _directivesDone = true;
                return null;
            }

            var value = match.Groups[2].Value;
            if (!_seenDirectives.Add(name))
            {
                throw Error(DockerfileErrorCodes.DuplicateDirective, lineNo, column,
                    $"the '{name}' parser directive is set twice; keep only one '# {name}=' line at the top of the file");
            }

            if (name == "escape")
            {
                if (value is not ("\\" or "`"))
                {
                    throw Error(DockerfileErrorCodes.InvalidDirective, lineNo, column,
                        $"invalid escape character '{value}'; the escape directive accepts only \\ (the default) or ` (backtick)");
                }

                _escape = value[0];
            }

            var node = new ParserDirectiveNode(name, value, new SourceLocation(lineNo, column, lineNo));
            _directives.Add(node);
            return node;
        }

        /// <summary>
        /// Removes a trailing escape character (and spaces/tabs after it) that continues the line.
        /// An escape character preceded by another one is an escaped escape character, not a continuation.
        /// </summary>
        private (string Line, bool EndOfLine) TrimContinuation(string line)
        {
            var end = line.Length;
            while (end > 0 && line[end - 1] is ' ' or '\t')
            {
                end--;
            }

            if (end == 0 || line[end - 1] != _escape)
            {
                return (line, true);
            }

            if (end >= 2 && line[end - 2] == _escape)
            {
                return (line, true);
            }

            return (line[..(end - 1)], false);
        }

        private (int Line, int Column) Locate(int startLine, int startColumn, string needle)
        {
            for (var i = startLine - 1; i < _next && i < _lines.Count; i++)
            {
                var index = LineText(i).IndexOf(needle, StringComparison.Ordinal);
                if (index >= 0)
                {
                    return (i + 1, index + 1);
                }
            }

            return (startLine, startColumn);
        }

        private string LineText(int index)
        {
            var (start, length) = _lines[index];
            var line = _text.AsSpan(start, length).TrimEnd("\r\n");
            if (index == 0 && line.StartsWith("\uFEFF"))
            {
                line = line[1..];
            }

            return line.ToString();
        }

        private static int CountLeadingWhitespace(string line)
        {
            var i = 0;
            while (i < line.Length && char.IsWhiteSpace(line[i]))
            {
                i++;
            }

            return i;
        }

        private static List<(int Start, int Length)> SplitLines(string text)
        {
            var lines = new List<(int, int)>();
            var start = 0;
            while (start < text.Length)
            {
                var newline = text.IndexOf('\n', start);
                var end = newline < 0 ? text.Length : newline + 1;
                lines.Add((start, end - start));
                start = end;
            }

            return lines;
        }

        private DockerfileSyntaxException Error(string code, int line, int column, string problem, Exception? inner = null) =>
            new(code, _fileName, line, column, problem, inner);
    }
}
