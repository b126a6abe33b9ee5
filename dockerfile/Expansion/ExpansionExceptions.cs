using Farm.Contracts;

namespace Farm.Dockerfile.Expansion;

/// <summary>
/// <c>${NAME?message}</c> or <c>${NAME:?message}</c> met an unset (or, with the colon, empty) variable.
/// </summary>
/// <remarks>See https://docs.docker.com/reference/dockerfile/#environment-replacement.</remarks>
public sealed class RequiredVariableException : FarmException
{
    public RequiredVariableException(string variableName, string reason, string word)
        : base(
            FarmErrorCodes.RequiredVariable,
            $"variable '{variableName}' {reason} (in \"{word}\"). Set it with ARG, ENV or --build-arg {variableName}=..., or drop the '?' modifier.")
    {
        VariableName = variableName;
        Reason = reason;
        Word = word;
    }

    /// <summary>The variable that had to be set.</summary>
    public string VariableName { get; }

    /// <summary>The message written after <c>?</c>, or the default reason.</summary>
    public string Reason { get; }

    /// <summary>The word being expanded.</summary>
    public string Word { get; }
}

/// <summary>
/// A word has malformed substitution syntax: an unterminated quote or <c>${</c>, <c>${}</c>, or an unknown modifier.
/// </summary>
/// <remarks>See https://docs.docker.com/reference/dockerfile/#environment-replacement.</remarks>
public sealed class ExpansionSyntaxException : FarmException
{
    public ExpansionSyntaxException(string problem, string word)
        : base(
            FarmErrorCodes.ExpansionSyntax,
            $"cannot expand \"{word}\": {problem}. Close the quote or brace, or escape a literal '$' as '\\$' (or '`$' with '# escape=`').")
    {
        Problem = problem;
        Word = word;
    }

    /// <summary>What was wrong, without the advice.</summary>
    public string Problem { get; }

    /// <summary>The word being expanded.</summary>
    public string Word { get; }
}

/// <summary>
/// The pattern of <c>${VAR#pat}</c>, <c>${VAR%pat}</c> or <c>${VAR/pat/repl}</c> is not a valid shell pattern.
/// </summary>
/// <remarks>
/// Only <c>\*</c>, <c>\?</c>, <c>\\</c>, <c>\}</c> and <c>\/</c> are valid escapes in such a pattern, as in BuildKit.
/// See https://docs.docker.com/reference/dockerfile/#environment-replacement.
/// </remarks>
public sealed class SubstitutionPatternException : FarmException
{
    public SubstitutionPatternException(string pattern, string problem, string word)
        : base(
            FarmErrorCodes.SubstitutionPattern,
            $"invalid pattern '{pattern}' in substitution \"{word}\": {problem}. Only \\*, \\?, \\\\, \\}} and \\/ may be escaped in a pattern.")
    {
        Pattern = pattern;
        Problem = problem;
        Word = word;
    }

    /// <summary>The pattern after expansion.</summary>
    public string Pattern { get; }

    /// <summary>What was wrong.</summary>
    public string Problem { get; }

    /// <summary>The word being expanded.</summary>
    public string Word { get; }
}

/// <summary>
/// The variables of one word expand to more than <see cref="ShellWordExpander.MaxExpandedLength"/> characters, as ARGs
/// or ENVs that repeat one another do when each doubles the last.
/// </summary>
public sealed class ExpansionTooLongException : FarmException
{
    public ExpansionTooLongException(string word, int limit)
        : base(
            FarmErrorCodes.ExpansionTooLong,
            $"cannot expand \"{(word.Length > 80 ? word[..80] + "..." : word)}\": its variables expand to more than {limit} characters. "
            + "Check for ARG or ENV values that repeat other variables (each such line doubles the text); pass large data as a file with COPY instead.")
    {
        Word = word;
    }

    /// <summary>The word being expanded.</summary>
    public string Word { get; }
}
