namespace Farm.Dockerfile.Parsing;

/// <summary>
/// Where a node sits in the Dockerfile: 1-based start line and column, and the 1-based last line
/// (continuation lines and heredoc bodies included).
/// </summary>
public readonly record struct SourceLocation(int StartLine, int StartColumn, int EndLine)
{
    public override string ToString() => StartLine == EndLine
        ? $"{StartLine}:{StartColumn}"
        : $"{StartLine}:{StartColumn}-{EndLine}";
}
