using System.Collections.Frozen;

namespace Farm.Dockerfile.Expansion;

/// <summary>When the builder substitutes variables in an instruction's arguments.</summary>
public enum ExpansionTiming
{
    /// <summary>Never: the text is passed on as written (RUN, CMD, ENTRYPOINT... a shell expands it at run time).</summary>
    None,

    /// <summary>While the Dockerfile is built, with the ENV and ARG values in scope at that step.</summary>
    AtBuild,

    /// <summary>Not now: the trigger is stored as written and expanded when a downstream build runs it (ONBUILD).</summary>
    Deferred,
}

/// <summary>Which Dockerfile instructions the builder expands variables in.</summary>
/// <remarks>
/// The list of https://docs.docker.com/reference/dockerfile/#environment-replacement (ADD, COPY, ENV, EXPOSE, FROM,
/// LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, and ONBUILD combined with one of these), plus ARG, whose default values
/// BuildKit expands too. RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell in the container.
/// </remarks>
public static class InstructionExpansion
{
    private static readonly FrozenDictionary<string, ExpansionTiming> Table = new Dictionary<string, ExpansionTiming>(StringComparer.OrdinalIgnoreCase)
    {
        ["ADD"] = ExpansionTiming.AtBuild,
        ["ARG"] = ExpansionTiming.AtBuild,
        ["COPY"] = ExpansionTiming.AtBuild,
        ["ENV"] = ExpansionTiming.AtBuild,
        ["EXPOSE"] = ExpansionTiming.AtBuild,
        ["FROM"] = ExpansionTiming.AtBuild,
        ["LABEL"] = ExpansionTiming.AtBuild,
        ["STOPSIGNAL"] = ExpansionTiming.AtBuild,
        ["USER"] = ExpansionTiming.AtBuild,
        ["VOLUME"] = ExpansionTiming.AtBuild,
        ["WORKDIR"] = ExpansionTiming.AtBuild,
        ["ONBUILD"] = ExpansionTiming.Deferred,
        ["RUN"] = ExpansionTiming.None,
        ["CMD"] = ExpansionTiming.None,
        ["ENTRYPOINT"] = ExpansionTiming.None,
        ["SHELL"] = ExpansionTiming.None,
        ["HEALTHCHECK"] = ExpansionTiming.None,
        ["MAINTAINER"] = ExpansionTiming.None,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>The instructions whose arguments are expanded at build time.</summary>
    public static IReadOnlySet<string> ExpandedAtBuild { get; } =
        Table.Where(pair => pair.Value == ExpansionTiming.AtBuild).Select(pair => pair.Key).ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>When variables are expanded for <paramref name="keyword"/> (case-insensitive); unknown keywords: never.</summary>
    public static ExpansionTiming For(string keyword)
    {
        ArgumentNullException.ThrowIfNull(keyword);
        return Table.TryGetValue(keyword, out var timing) ? timing : ExpansionTiming.None;
    }

    /// <summary>True when the builder expands variables in <paramref name="keyword"/>'s arguments now.</summary>
    public static bool ExpandsVariables(string keyword) => For(keyword) == ExpansionTiming.AtBuild;
}
