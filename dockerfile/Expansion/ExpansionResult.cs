namespace Farm.Dockerfile.Expansion;

/// <summary>
/// The outcome of expanding one word: the joined value, the same text split into words, and the variables it looked up.
/// </summary>
/// <param name="Value">The expanded word with quotes and escapes removed (what <c>ProcessWord</c> returns).</param>
/// <param name="Words">
/// The expansion split on unquoted whitespace, as for EXPOSE, VOLUME and ARG lists (what <c>ProcessWords</c> returns).
/// Whitespace that came from a variable's value splits too; whitespace inside quotes or escaped does not.
/// </param>
/// <param name="MatchedNames">Variables that were looked up and set (possibly to an empty value).</param>
/// <param name="UnmatchedNames">Variables that were looked up and unset.</param>
/// <remarks>
/// BuildKit uses the matched names to decide which ARGs a step depends on and to warn about unused build args.
/// See https://docs.docker.com/reference/dockerfile/#environment-replacement.
/// </remarks>
public sealed record ExpansionResult(
    string Value,
    IReadOnlyList<string> Words,
    IReadOnlySet<string> MatchedNames,
    IReadOnlySet<string> UnmatchedNames)
{
    /// <summary>Every variable name the word referred to and that was evaluated, set or not.</summary>
    public IReadOnlySet<string> ReferencedNames
    {
        get
        {
            var all = new HashSet<string>(MatchedNames, StringComparer.Ordinal);
            all.UnionWith(UnmatchedNames);
            return all;
        }
    }
}
