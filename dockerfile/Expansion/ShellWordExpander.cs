using System.Text;

namespace Farm.Dockerfile.Expansion;

/// <summary>
/// Expands variables in a Dockerfile word the way BuildKit's shell lexer does: <c>$VAR</c>, <c>${VAR}</c>, the
/// <c>-</c> <c>+</c> <c>?</c> modifiers with and without a colon, <c>#</c> <c>##</c> <c>%</c> <c>%%</c> trimming,
/// <c>/</c> and <c>//</c> replacement, single and double quotes, and the escape character.
/// </summary>
/// <remarks>
/// <para>See https://docs.docker.com/reference/dockerfile/#environment-replacement. Rules follow
/// moby/buildkit frontend/dockerfile/shell/lex.go, including its quirks: <c>$1</c>, <c>$@</c>, <c>$*</c> and the other
/// special parameters are looked up like any name (so they normally expand to nothing), and a name is letters,
/// digits and '_' in any script.</para>
/// <para>Instances are immutable and safe to share between threads.</para>
/// </remarks>
public sealed class ShellWordExpander
{
    /// <summary>Creates an expander for a Dockerfile whose escape character is <paramref name="escapeToken"/>.</summary>
    /// <param name="escapeToken"><c>\</c> (the default) or <c>`</c> (set by the <c># escape=`</c> directive).</param>
    public ShellWordExpander(char escapeToken = '\\')
    {
        if (escapeToken is not ('\\' or '`'))
        {
            throw new ArgumentOutOfRangeException(nameof(escapeToken), escapeToken, "The Dockerfile escape character is '\\' or '`'.");
        }

        EscapeToken = escapeToken;
    }

    /// <summary>The escape character of the Dockerfile.</summary>
    public char EscapeToken { get; }

    /// <summary>
    /// Leave references to unset variables as written (<c>$X</c>, <c>${X:-d}</c>) instead of expanding them, for a
    /// first pass whose unresolved names are filled in later (BuildKit's <c>SkipUnsetEnv</c>).
    /// </summary>
    public bool KeepUnsetReferences { get; init; }

    /// <summary>Keep quote characters in the output (BuildKit's <c>RawQuotes</c>).</summary>
    public bool KeepQuotes { get; init; }

    /// <summary>
    /// Treat quotes as quotes (the default). False makes <c>'</c> and <c>"</c> ordinary characters, as for heredoc
    /// bodies (BuildKit's <c>SkipProcessQuotes</c>).
    /// </summary>
    public bool ProcessQuotes { get; init; } = true;

    /// <summary>
    /// How many characters the variables of one word may expand to, all substitutions together. ARGs or ENVs that
    /// each repeat the one before (<c>ARG a1=$a0$a0</c>, <c>ARG a2=$a1$a1</c>, ...) double with every line, so a
    /// Dockerfile of a few hundred bytes would otherwise ask for gigabytes. A mebibyte is eight times what Linux lets
    /// one argument or environment string of a process hold (MAX_ARG_STRLEN, 128 KiB).
    /// </summary>
    public const int MaxExpandedLength = 1 << 20;

    /// <summary>
    /// How deep <c>${a:-${b:-...}}</c> may nest. Each level is a few frames of recursion; without a bound a long enough
    /// word overflows the stack, which ends the whole process (the coordinator), not just the build.
    /// </summary>
    public const int MaxNesting = 256;

    /// <summary>Expands <paramref name="word"/>; <paramref name="lookup"/> returns null for an unset variable.</summary>
    /// <exception cref="RequiredVariableException">A <c>?</c> modifier met an unset or empty variable.</exception>
    /// <exception cref="ExpansionSyntaxException">The word is malformed.</exception>
    /// <exception cref="SubstitutionPatternException">A trim or replace pattern is invalid.</exception>
    /// <exception cref="ExpansionTooLongException">The variables expand to more than <see cref="MaxExpandedLength"/> characters.</exception>
    public ExpansionResult Expand(string word, Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(word);
        ArgumentNullException.ThrowIfNull(lookup);
        var state = new Lexer(this, word, lookup);
        var (value, words) = state.ProcessUntil(Lexer.Eof, rawEscapes: false);
        return new ExpansionResult(value, words, state.Matched, state.Unmatched);
    }

    /// <summary>Expands <paramref name="word"/> against a set of variables; a missing key is an unset variable.</summary>
    public ExpansionResult Expand(string word, IReadOnlyDictionary<string, string> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return Expand(word, name => variables.TryGetValue(name, out var value) ? value : null);
    }

    /// <summary>Expands one word to one string with quotes removed (ENV values, WORKDIR, USER, COPY paths...).</summary>
    public string ProcessWord(string word, Func<string, string?> lookup) => Expand(word, lookup).Value;

    /// <inheritdoc cref="ProcessWord(string, Func{string, string?})"/>
    public string ProcessWord(string word, IReadOnlyDictionary<string, string> variables) => Expand(word, variables).Value;

    /// <summary>Expands and splits on unquoted whitespace (EXPOSE, VOLUME, ARG lists).</summary>
    public IReadOnlyList<string> ProcessWords(string word, Func<string, string?> lookup) => Expand(word, lookup).Words;

    /// <inheritdoc cref="ProcessWords(string, Func{string, string?})"/>
    public IReadOnlyList<string> ProcessWords(string word, IReadOnlyDictionary<string, string> variables) => Expand(word, variables).Words;

    /// <summary>One expansion in progress: a cursor over the word's runes.</summary>
    private sealed class Lexer
    {
        public const int Eof = -1;

        private readonly ShellWordExpander _options;
        private readonly string _source;
        private readonly Rune[] _runes;
        private readonly Func<string, string?> _lookup;
        private int _pos;
        private bool _rawEscapes;
        private long _expanded;
        private int _depth;

        public Lexer(ShellWordExpander options, string source, Func<string, string?> lookup)
        {
            _options = options;
            _source = source;
            _runes = source.EnumerateRunes().ToArray();
            _lookup = lookup;
        }

        public HashSet<string> Matched { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Unmatched { get; } = new(StringComparer.Ordinal);

        private int Peek() => _pos < _runes.Length ? _runes[_pos].Value : Eof;

        private int Next() => _pos < _runes.Length ? _runes[_pos++].Value : Eof;

        /// <summary>Processes up to <paramref name="stop"/> (consumed) or the end of the word.</summary>
        public (string Value, List<string> Words) ProcessUntil(int stop, bool rawEscapes)
        {
            if (++_depth > MaxNesting)
            {
                throw new ExpansionSyntaxException($"more than {MaxNesting} nested ${{...}}", _source.Length > 80 ? _source[..80] + "..." : _source);
            }

            var saved = _rawEscapes;
            _rawEscapes = rawEscapes;
            try
            {
                return ProcessUntilCore(stop);
            }
            finally
            {
                _rawEscapes = saved;
                _depth--;
            }
        }

        private (string Value, List<string> Words) ProcessUntilCore(int stop)
        {
            var result = new StringBuilder();
            var words = new WordSplitter();
            var escape = (int)_options.EscapeToken;

            while (Peek() != Eof)
            {
                var ch = Peek();
                if (stop != Eof && ch == stop)
                {
                    Next();
                    return (result.ToString(), words.Finish());
                }

                if (ch == '$')
                {
                    var expanded = Substitute();
                    result.Append(expanded);
                    // Whitespace that comes out of a variable splits words.
                    words.AddString(expanded);
                    continue;
                }

                if (_options.ProcessQuotes && ch is '\'' or '"')
                {
                    var quoted = ch == '\'' ? ProcessSingleQuote() : ProcessDoubleQuote();
                    result.Append(quoted);
                    words.AddRawString(quoted);
                    continue;
                }

                ch = Next();
                if (ch == escape)
                {
                    if (_rawEscapes)
                    {
                        words.AddRawChar(ch);
                        AppendRune(result, ch);
                    }

                    ch = Next();
                    if (ch == Eof)
                    {
                        // A trailing escape character escapes nothing and is dropped.
                        break;
                    }

                    words.AddRawChar(ch);
                }
                else
                {
                    words.AddChar(ch);
                }

                AppendRune(result, ch);
            }

            if (stop != Eof)
            {
                throw new ExpansionSyntaxException(stop == '/' ? "missing '/' in ${...}" : $"missing '{(char)stop}'", _source);
            }

            return (result.ToString(), words.Finish());
        }

        private string ProcessSingleQuote()
        {
            // Everything up to the next ' is literal; a single quote cannot be escaped inside single quotes.
            var result = new StringBuilder();
            var ch = Next();
            if (_options.KeepQuotes)
            {
                AppendRune(result, ch);
            }

            while (true)
            {
                ch = Next();
                if (ch == Eof)
                {
                    throw new ExpansionSyntaxException("unterminated single quote", _source);
                }

                if (ch == '\'')
                {
                    if (_options.KeepQuotes)
                    {
                        AppendRune(result, ch);
                    }

                    return result.ToString();
                }

                AppendRune(result, ch);
            }
        }

        private string ProcessDoubleQuote()
        {
            // Literal except '$'; the escape character escapes only '"', '$' and itself, and stays otherwise.
            var result = new StringBuilder();
            var escape = (int)_options.EscapeToken;
            var ch = Next();
            if (_options.KeepQuotes)
            {
                AppendRune(result, ch);
            }

            while (true)
            {
                switch (Peek())
                {
                    case Eof:
                        throw new ExpansionSyntaxException("unterminated double quote", _source);
                    case '"':
                        ch = Next();
                        if (_options.KeepQuotes)
                        {
                            AppendRune(result, ch);
                        }

                        return result.ToString();
                    case '$':
                        result.Append(Substitute());
                        break;
                    default:
                        ch = Next();
                        if (ch == escape)
                        {
                            if (_rawEscapes)
                            {
                                AppendRune(result, ch);
                            }

                            var next = Peek();
                            if (next == Eof)
                            {
                                continue;
                            }

                            if (next == '"' || next == '$' || next == escape)
                            {
                                ch = Next();
                            }
                        }

                        AppendRune(result, ch);
                        break;
                }
            }
        }

        /// <summary>One substitution, counted against <see cref="MaxExpandedLength"/> before anything appends it.</summary>
        private string Substitute()
        {
            var value = ProcessDollar();
            _expanded += value.Length;
            if (_expanded > MaxExpandedLength)
            {
                throw new ExpansionTooLongException(_source, MaxExpandedLength);
            }

            return value;
        }

        private string ProcessDollar()
        {
            Next();

            if (Peek() != '{')
            {
                var bareName = ProcessName();
                if (bareName.Length == 0)
                {
                    // '$' before something that is not a name stays literal ("$.", "$ ", trailing "$").
                    return "$";
                }

                var bareValue = Lookup(bareName);
                if (bareValue is null && _options.KeepUnsetReferences)
                {
                    return "$" + bareName;
                }

                return bareValue ?? string.Empty;
            }

            Next();
            switch (Peek())
            {
                case Eof:
                    throw new ExpansionSyntaxException("missing '}'", _source);
                case '{' or '}' or ':':
                    throw new ExpansionSyntaxException("bad substitution (no variable name after '${')", _source);
            }

            var name = ProcessName();
            var modifier = Next();
            var modifierText = RuneText(modifier);
            var nullIsUnset = false;

            switch (modifier)
            {
                case '}':
                {
                    var value = Lookup(name);
                    if (value is null && _options.KeepUnsetReferences)
                    {
                        return "${" + name + "}";
                    }

                    return value ?? string.Empty;
                }

                case Eof:
                    throw new ExpansionSyntaxException("missing '}'", _source);

                case '/':
                    return ProcessReplace(name);

                case ':' or '+' or '-' or '?' or '#' or '%':
                    if (modifier == ':')
                    {
                        nullIsUnset = true;
                        modifier = Next();
                        modifierText += RuneText(modifier);
                    }

                    break;

                default:
                    throw new ExpansionSyntaxException($"unsupported modifier '{modifierText}' in ${{{name}...}}", _source);
            }

            // Patterns keep their escapes so that \* can be told from *.
            var rawEscapes = modifier is '#' or '%';
            var (word, _) = ProcessUntil('}', rawEscapes);

            var current = Lookup(name);
            var set = current is not null;
            if (!set && _options.KeepUnsetReferences)
            {
                return "${" + name + modifierText + word + "}";
            }

            var empty = !set || (nullIsUnset && current!.Length == 0);
            switch (modifier)
            {
                case '-':
                    return empty ? word : current!;
                case '+':
                    return empty ? string.Empty : word;
                case '?':
                    if (!set)
                    {
                        throw new RequiredVariableException(name, word.Length > 0 ? word : "is not allowed to be unset", _source);
                    }

                    if (empty)
                    {
                        throw new RequiredVariableException(name, word.Length > 0 ? word : "is not allowed to be empty", _source);
                    }

                    return current!;
                case '#' or '%':
                {
                    // '#'/'%' remove the shortest match, '##'/'%%' the longest.
                    var greedy = word.Length > 0 && word[0] == modifier;
                    var pattern = greedy ? word[1..] : word;
                    var value = current ?? string.Empty;
                    return modifier == '%'
                        ? ShellPattern.TrimSuffix(pattern, value, greedy, _source)
                        : ShellPattern.TrimPrefix(pattern, value, greedy, _source);
                }

                default:
                    throw new ExpansionSyntaxException($"unsupported modifier '{modifierText}' in ${{{name}...}}", _source);
            }
        }

        private string ProcessReplace(string name)
        {
            var all = Peek() == '/';
            if (all)
            {
                Next();
            }

            var (pattern, _) = ProcessUntil('/', rawEscapes: true);
            var (replacement, _) = ProcessUntil('}', rawEscapes: true);

            var value = Lookup(name);
            if (value is null && _options.KeepUnsetReferences)
            {
                return "${" + name + (all ? "//" : "/") + pattern + "/" + replacement + "}";
            }

            return ShellPattern.Replace(pattern, replacement, value ?? string.Empty, all, _source);
        }

        private string ProcessName()
        {
            // A name is letters, digits and '_'; a leading digit run ($1, $10) or one special parameter ($@, $*,
            // $#, $?, $-, $$, $!, $0) is a name on its own.
            var name = new StringBuilder();
            while (_pos < _runes.Length)
            {
                var rune = _runes[_pos];
                if (name.Length == 0 && Rune.IsDigit(rune))
                {
                    while (_pos < _runes.Length && Rune.IsDigit(_runes[_pos]))
                    {
                        name.Append(_runes[_pos++].ToString());
                    }

                    return name.ToString();
                }

                if (name.Length == 0 && rune.Value is '@' or '*' or '#' or '?' or '-' or '$' or '!' or '0')
                {
                    _pos++;
                    return rune.ToString();
                }

                if (!Rune.IsLetter(rune) && !Rune.IsDigit(rune) && rune.Value != '_')
                {
                    break;
                }

                name.Append(rune.ToString());
                _pos++;
            }

            return name.ToString();
        }

        private string? Lookup(string name)
        {
            var value = _lookup(name);
            if (value is null)
            {
                Unmatched.Add(name);
            }
            else
            {
                Matched.Add(name);
            }

            return value;
        }

        private static string RuneText(int value) => value == Eof ? string.Empty : char.ConvertFromUtf32(value);

        private static void AppendRune(StringBuilder builder, int value)
        {
            if (value < 0x10000)
            {
                builder.Append((char)value);
            }
            else
            {
                builder.Append(char.ConvertFromUtf32(value));
            }
        }
    }

    /// <summary>Accumulates words the way BuildKit's lexer splits them.</summary>
    private sealed class WordSplitter
    {
        private readonly StringBuilder _word = new();
        private readonly List<string> _words = [];
        private bool _inWord;

        public void AddChar(int value)
        {
            var isSpace = Rune.IsValid(value) && Rune.IsWhiteSpace(new Rune(value));
            if (isSpace)
            {
                if (_inWord && _word.Length != 0)
                {
                    _words.Add(_word.ToString());
                    _word.Clear();
                    _inWord = false;
                }
            }
            else
            {
                AddRawChar(value);
            }
        }

        public void AddRawChar(int value)
        {
            _word.Append(char.ConvertFromUtf32(value));
            _inWord = true;
        }

        public void AddString(string text)
        {
            foreach (var rune in text.EnumerateRunes())
            {
                AddChar(rune.Value);
            }
        }

        public void AddRawString(string text)
        {
            _word.Append(text);
            _inWord = true;
        }

        public List<string> Finish()
        {
            if (_word.Length > 0)
            {
                _words.Add(_word.ToString());
                _word.Clear();
                _inWord = false;
            }

            return _words;
        }
    }
}
