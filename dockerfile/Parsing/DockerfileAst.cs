namespace Farm.Dockerfile.Parsing;

/// <summary>
/// A parsed Dockerfile, before any variable expansion. Mirrors the tree of BuildKit's
/// <c>frontend/dockerfile/parser</c>, plus the trivia (directives, comments, blank lines) a
/// tool needs to reproduce or lint the file.
/// See https://docs.docker.com/reference/dockerfile/#format.
/// </summary>
public sealed record DockerfileAst
{
    /// <summary>The name used in error messages and locations.</summary>
    public required string FileName { get; init; }

    /// <summary>The escape character in force: <c>\</c> by default, <c>`</c> after <c># escape=`</c>.</summary>
    public required char EscapeToken { get; init; }

    /// <summary>Recognised parser directives (syntax, escape, check), in order.</summary>
    public required IReadOnlyList<ParserDirectiveNode> Directives { get; init; }

    /// <summary>Every top-level node in source order: directives, comments, blank lines, instructions.</summary>
    public required IReadOnlyList<DockerfileNode> Nodes { get; init; }

    /// <summary>The instructions only, in source order.</summary>
    public required IReadOnlyList<InstructionNode> Instructions { get; init; }

    /// <summary>First line of the first instruction (BuildKit's root StartLine).</summary>
    public int StartLine => Instructions[0].Location.StartLine;

    /// <summary>Last line of the last instruction (BuildKit's root EndLine).</summary>
    public int EndLine => Instructions[^1].Location.EndLine;

    /// <summary>The value of a directive (names are case-insensitive), or null when absent.</summary>
    public string? Directive(string name) =>
        Directives.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase))?.Value;
}

/// <summary>A node of the Dockerfile with its position.</summary>
public abstract record DockerfileNode(SourceLocation Location);

/// <summary>
/// A parser directive such as <c># syntax=docker/dockerfile:1</c> or <c># escape=`</c>; only
/// recognised in the leading comment lines. See https://docs.docker.com/reference/dockerfile/#parser-directives.
/// </summary>
/// <param name="Name">The directive name, lower-cased (<c>syntax</c>, <c>escape</c>, <c>check</c>).</param>
/// <param name="Value">The value, trimmed.</param>
/// <param name="Location">The directive line.</param>
public sealed record ParserDirectiveNode(string Name, string Value, SourceLocation Location) : DockerfileNode(Location);

/// <summary>A comment line; <paramref name="Text"/> is what follows <c>#</c>, trimmed.</summary>
public sealed record CommentNode(string Text, SourceLocation Location) : DockerfileNode(Location);

/// <summary>A line holding nothing but whitespace, outside any instruction.</summary>
public sealed record BlankLineNode(SourceLocation Location) : DockerfileNode(Location);

/// <summary>
/// One instruction as BuildKit's parser sees it: keyword, leading <c>--flags</c>, and argument
/// nodes split by the instruction's rule (JSON array, whitespace, key/value triples…).
/// Nothing is expanded. See https://docs.docker.com/reference/dockerfile/#overview.
/// </summary>
public sealed record InstructionNode(SourceLocation Location) : DockerfileNode(Location)
{
    /// <summary>The keyword as written (<c>Run</c>, <c>COPY</c>…).</summary>
    public required string Keyword { get; init; }

    /// <summary>The keyword lower-cased, for dispatch (<c>run</c>).</summary>
    public string Command => Keyword.ToLowerInvariant();

    /// <summary>Leading flag words, quotes removed, e.g. <c>--from=build</c>; a bare <c>--</c> is dropped.</summary>
    public required IReadOnlyList<string> Flags { get; init; }

    /// <summary>
    /// The argument nodes. ENV and LABEL give triples (key, value, separator <c>"="</c> or <c>""</c>);
    /// ONBUILD gives none (see <see cref="Inner"/>).
    /// </summary>
    public required IReadOnlyList<string> Arguments { get; init; }

    /// <summary>The text after the keyword and flags, trimmed, exactly as written on the joined line.</summary>
    public required string ArgumentText { get; init; }

    /// <summary>True when the arguments came from a JSON array (exec form).</summary>
    public required bool IsJson { get; init; }

    /// <summary>The instruction ONBUILD triggers; null for every other instruction or an empty ONBUILD.</summary>
    public InstructionNode? Inner { get; init; }

    /// <summary>Heredoc bodies attached to this instruction (RUN, COPY, ADD, or ONBUILD of those), in order.</summary>
    public IReadOnlyList<Heredoc> Heredocs { get; init; } = [];

    /// <summary>The logical line: physical lines joined, continuation characters and inner comments removed.</summary>
    public required string Original { get; init; }

    /// <summary>The exact source text, from the first physical line to the last (heredoc bodies included).</summary>
    public required string SourceText { get; init; }

    /// <summary>Comments that precede the instruction (text after <c>#</c>, trimmed).</summary>
    public IReadOnlyList<string> PrecedingComments { get; init; } = [];
}

/// <summary>
/// A here-document attached to an instruction: <c>&lt;&lt;EOF</c>, <c>&lt;&lt;-EOF</c> (leading tabs
/// stripped), <c>&lt;&lt;"EOF"</c> or <c>&lt;&lt;'EOF'</c> (no expansion).
/// See https://docs.docker.com/reference/dockerfile/#here-documents.
/// </summary>
/// <param name="Name">The terminator word, quotes removed.</param>
/// <param name="FileDescriptor">The file descriptor written before <c>&lt;&lt;</c> (<c>3&lt;&lt;EOF</c>), or 0.</param>
/// <param name="Expand">False when the terminator was quoted: the body is used verbatim.</param>
/// <param name="Chomp">True for <c>&lt;&lt;-</c>.</param>
/// <param name="RawContent">The body lines exactly as written, each with its line end.</param>
/// <param name="Location">From the first body line to the terminator line.</param>
public sealed record Heredoc(string Name, int FileDescriptor, bool Expand, bool Chomp, string RawContent, SourceLocation Location)
{
    /// <summary>The body as the instruction sees it: leading tabs stripped from each line for <c>&lt;&lt;-</c>.</summary>
    public string Content => Chomp ? StripLeadingTabs(RawContent) : RawContent;

    private static string StripLeadingTabs(string text)
    {
        var sb = new System.Text.StringBuilder(text.Length);
        var atLineStart = true;
        foreach (var c in text)
        {
            if (atLineStart && c == '\t')
            {
                continue;
            }

            atLineStart = c == '\n';
            sb.Append(c);
        }

        return sb.ToString();
    }
}
