using Farm.Contracts;

namespace Farm.Dockerfile.Ignore;

/// <summary>A <c>.dockerignore</c> pattern cannot be compiled (a malformed character class, a lone <c>!</c>...).</summary>
/// <remarks>See https://docs.docker.com/reference/dockerfile/#dockerignore-file.</remarks>
public sealed class InvalidIgnorePatternException : FarmException
{
    public InvalidIgnorePatternException(string pattern, string problem, int line, string? sourceName)
        : base(FarmErrorCodes.InvalidIgnorePattern, Describe(pattern, problem, line, sourceName))
    {
        Pattern = pattern;
        Problem = problem;
        Line = line;
        SourceName = sourceName;
    }

    /// <summary>The pattern as written on its line.</summary>
    public string Pattern { get; }

    /// <summary>What was wrong.</summary>
    public string Problem { get; }

    /// <summary>1-based line in the ignore file; 0 when the pattern did not come from a file.</summary>
    public int Line { get; }

    /// <summary>The ignore file, when known.</summary>
    public string? SourceName { get; }

    private static string Describe(string pattern, string problem, int line, string? sourceName)
    {
        var where = (sourceName, line) switch
        {
            (null, 0) => "ignore pattern",
            (null, _) => $".dockerignore line {line}: pattern",
            (_, 0) => $"{sourceName}: pattern",
            _ => $"{sourceName} line {line}: pattern",
        };
        return $"{where} '{pattern}' is invalid: {problem}. Fix the pattern (escape a literal '[' or '\\' with '\\') or remove the line.";
    }
}
