using System.Globalization;

namespace Farm.Dockerfile.Planning;

/// <summary>
/// Why a step ran instead of coming from the cache, against the previous build of the same Dockerfile and target
/// (docs/architecture.md, "Why a step ran"). Names, paths and digests only: never a build arg's or variable's value.
/// </summary>
public sealed record StepExplanation
{
    /// <summary>One line, as <c>--progress plain</c> prints it under the step (<c>COPY source src/app.py changed</c>).</summary>
    public required string Summary { get; init; }

    /// <summary>Every input that differs, most specific first.</summary>
    public IReadOnlyList<ExplanationReason> Reasons { get; init; } = [];

    /// <summary>The build compared with; null when there was none.</summary>
    public Guid? PreviousBuild { get; init; }

    /// <summary>The step of <see cref="PreviousBuild"/> compared with; null when none matched.</summary>
    public string? PreviousStep { get; init; }
}

/// <summary>One input of a step's cache key that differs from the previous build.</summary>
public sealed record ExplanationReason
{
    /// <summary>
    /// <c>never-built</c>, <c>new-step</c>, <c>no-cache</c>, <c>not-cacheable</c>, <c>files</c>, <c>args</c>, <c>env</c>,
    /// <c>instruction</c>, <c>settings</c>, <c>source</c>, <c>base</c>, <c>parent</c>, <c>cache-entry-gone</c> or <c>key-format</c>.
    /// </summary>
    public required string Kind { get; init; }

    public required string Message { get; init; }

    /// <summary>For <c>files</c>: paths new since the previous build (at most <see cref="KeyInputsDiff.PathsShown"/>).</summary>
    public IReadOnlyList<string> Added { get; init; } = [];

    public int AddedCount { get; init; }

    public IReadOnlyList<string> Removed { get; init; } = [];

    public int RemovedCount { get; init; }

    public IReadOnlyList<string> Changed { get; init; } = [];

    public int ChangedCount { get; init; }

    /// <summary>For <c>args</c>, <c>env</c>, <c>settings</c>, <c>source</c>: the names that differ (never values).</summary>
    public IReadOnlyList<string> Names { get; init; } = [];
}

/// <summary>The previous build of a lineage: its id and every layer step's key inputs.</summary>
public sealed record BuildKeyInputs
{
    public required Guid BuildId { get; init; }

    public DateTimeOffset At { get; init; }

    public IReadOnlyList<StepKeyInputs> Steps { get; init; } = [];
}

/// <summary>Compares a step's <see cref="StepKeyInputs"/> with the previous build's and says what differs.</summary>
public static class KeyInputsDiff
{
    /// <summary>Paths listed per kind of file change; the counts tell the rest.</summary>
    public const int PathsShown = 20;

    /// <summary>
    /// Why <paramref name="step"/> ran. <paramref name="current"/> holds the current build's steps (to name a rebuilt
    /// parent); <paramref name="previous"/> is null when the lineage has no earlier build.
    /// </summary>
    public static StepExplanation Explain(StepKeyInputs step, IReadOnlyList<StepKeyInputs> current, BuildKeyInputs? previous, bool noCache, string? notCacheable)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(current);
        if (noCache)
        {
            return One("no-cache", "--no-cache: every step runs", previous?.BuildId, null);
        }

        if (notCacheable is not null)
        {
            return One("not-cacheable", "not cacheable: " + notCacheable, previous?.BuildId, null);
        }

        if (previous is null)
        {
            return One("never-built", "never built: no earlier build of this Dockerfile and target", null, null);
        }

        var before = Match(step, previous.Steps);
        if (before is null)
        {
            return One("new-step", $"new step: the previous build {Short(previous.BuildId)} had no {step.Instruction} like it in this stage", previous.BuildId, null);
        }

        var reasons = Compare(step, before, current);
        if (reasons.Count == 0)
        {
            reasons.Add(string.Equals(step.Key, before.Key, StringComparison.Ordinal)
                ? Reason("cache-entry-gone", $"inputs unchanged since build {Short(previous.BuildId)}, but its cache entry is gone (pruned, evicted, or its layer deleted)")
                : Reason("key-format", "the cache key changed with no input changed: the farm's cache salt or key format changed"));
        }

        var own = reasons.Where(r => r.Kind is not ("parent" or "base")).ToList();
        var summary = own.Count > 0
            ? string.Join("; ", own.Take(2).Select(r => r.Message)) + (own.Count > 2 ? $" (+{own.Count - 2} more)" : string.Empty)
            : reasons[0].Message;
        return new StepExplanation { Summary = summary, Reasons = reasons, PreviousBuild = previous.BuildId, PreviousStep = before.StepId };
    }

    /// <summary>
    /// The previous build's step to compare with: the same id running the same instruction, else the same instruction
    /// text in the same stage (a line inserted above shifts ids), else the same text anywhere.
    /// </summary>
    public static StepKeyInputs? Match(StepKeyInputs step, IReadOnlyList<StepKeyInputs> previous)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(previous);
        return previous.FirstOrDefault(p => p.StepId == step.StepId && p.Instruction == step.Instruction && p.Text == step.Text)
            ?? previous.FirstOrDefault(p => p.StageIndex == step.StageIndex && p.Text == step.Text)
            ?? previous.FirstOrDefault(p => p.Text == step.Text)
            ?? previous.FirstOrDefault(p => p.StepId == step.StepId && p.Instruction == step.Instruction);
    }

    private static List<ExplanationReason> Compare(StepKeyInputs now, StepKeyInputs before, IReadOnlyList<StepKeyInputs> current)
    {
        var reasons = new List<ExplanationReason>();
        if (Files(now, before) is { } files)
        {
            reasons.Add(files);
        }

        var args = Differing(now.Args, before.Args);
        if (args.Count > 0)
        {
            reasons.Add(Reason("args", (args.Count == 1 ? "build arg " : "build args ") + string.Join(", ", args) + " changed", names: args));
        }

        var env = Differing(now.Env, before.Env);
        if (env.Count > 0)
        {
            reasons.Add(Reason("env", (env.Count == 1 ? "environment variable " : "environment variables ") + string.Join(", ", env) + " changed", names: env));
        }

        if (now.Text != before.Text)
        {
            reasons.Add(Reason("instruction", $"the {now.Instruction} instruction changed"));
        }

        // A RUN's argv is its text with the SHELL in front: an edited command is said once, as the instruction.
        var settings = Differing(now.Settings, before.Settings).Where(s => s != "command" || now.Text == before.Text).ToList();
        if (settings.Count > 0)
        {
            var shown = settings.Select(SettingName).ToList();
            reasons.Add(Reason("settings", string.Join(", ", shown) + " changed", names: settings));
        }

        var sources = Differing(now.Sources, before.Sources);
        if (sources.Count > 0)
        {
            reasons.Add(Reason("source", $"{now.Instruction} --from {string.Join(", ", sources)} changed", names: sources));
        }

        if (now.ParentKey != before.ParentKey)
        {
            if (now.ParentIsBase)
            {
                reasons.Add(Base(now, before));
            }
            else
            {
                var parent = current.FirstOrDefault(s => s.Key == now.ParentKey);
                reasons.Add(Reason("parent", parent is null ? "the layer below changed" : $"the layer below changed: {parent.StepId} ({parent.Instruction}) ran again"));
            }
        }

        return reasons;
    }

    private static ExplanationReason Base(StepKeyInputs now, StepKeyInputs before)
    {
        if (!string.Equals(now.BaseReference, before.BaseReference, StringComparison.Ordinal))
        {
            return Reason("base", $"the base changed from {before.BaseReference} to {now.BaseReference}");
        }

        if (now.BaseReference.StartsWith("stage ", StringComparison.Ordinal))
        {
            return Reason("base", $"the base {now.BaseReference} changed");
        }

        return now.BaseDigest != before.BaseDigest
            ? Reason("base", $"base image {now.BaseReference} updated ({Abbrev(before.BaseDigest)} -> {Abbrev(now.BaseDigest)})")
            : Reason("base", $"the base {now.BaseReference} changed (platform)");
    }

    private static ExplanationReason? Files(StepKeyInputs now, StepKeyInputs before)
    {
        if (now.FilesDigest == before.FilesDigest)
        {
            return null;
        }

        var added = now.Files.Keys.Where(p => !before.Files.ContainsKey(p)).Order(StringComparer.Ordinal).ToList();
        var removed = before.Files.Keys.Where(p => !now.Files.ContainsKey(p)).Order(StringComparer.Ordinal).ToList();
        var changed = now.Files.Where(p => before.Files.TryGetValue(p.Key, out var d) && d != p.Value).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();
        var truncated = now.FileCount > now.Files.Count || before.FileCount > before.Files.Count;
        if (truncated)
        {
            // Paths beyond the recorded ones are not compared one by one; a path missing on one side may only be unrecorded.
            added = [.. added.Where(_ => before.FileCount == before.Files.Count)];
            removed = [.. removed.Where(_ => now.FileCount == now.Files.Count)];
        }

        var what = now.Instruction is "RUN" ? "RUN --mount source" : now.Instruction + " source";
        string message;
        if (added.Count + removed.Count + changed.Count == 0)
        {
            message = $"{what}s changed among {now.FileCount.ToString(CultureInfo.InvariantCulture)} paths (beyond the {now.Files.Count.ToString(CultureInfo.InvariantCulture)} recorded one by one)";
        }
        else if (added.Count + removed.Count + changed.Count == 1)
        {
            var (path, verb) = changed.Count == 1 ? (changed[0], "changed") : added.Count == 1 ? (added[0], "added") : (removed[0], "removed");
            message = $"{what} {path} {verb}";
        }
        else
        {
            var parts = new List<string>();
            if (changed.Count > 0)
            {
                parts.Add($"{changed.Count.ToString(CultureInfo.InvariantCulture)} changed");
            }

            if (added.Count > 0)
            {
                parts.Add($"{added.Count.ToString(CultureInfo.InvariantCulture)} added");
            }

            if (removed.Count > 0)
            {
                parts.Add($"{removed.Count.ToString(CultureInfo.InvariantCulture)} removed");
            }

            var first = changed.Concat(added).Concat(removed).Take(3);
            message = $"{what}s: {string.Join(", ", parts)} ({string.Join(", ", first)}{(added.Count + removed.Count + changed.Count > 3 ? ", ..." : string.Empty)})";
        }

        return new ExplanationReason
        {
            Kind = "files",
            Message = message,
            Added = [.. added.Take(PathsShown)],
            AddedCount = added.Count,
            Removed = [.. removed.Take(PathsShown)],
            RemovedCount = removed.Count,
            Changed = [.. changed.Take(PathsShown)],
            ChangedCount = changed.Count,
        };
    }

    private static List<string> Differing(IReadOnlyDictionary<string, string> now, IReadOnlyDictionary<string, string> before) =>
        [.. now.Keys.Union(before.Keys, StringComparer.Ordinal)
            .Where(k => !now.TryGetValue(k, out var a) || !before.TryGetValue(k, out var b) || a != b)
            .Order(StringComparer.Ordinal)];

    private static string SettingName(string setting) => setting switch
    {
        "command" => "the command or SHELL",
        "user" => "USER",
        "workdir" => "WORKDIR",
        "network" => "--network",
        "security" => "--security",
        "mounts" => "--mount",
        "heredocs" => "a heredoc",
        "chown" => "--chown",
        "chmod" => "--chmod",
        "flags" => "the instruction's flags",
        _ => setting,
    };

    private static StepExplanation One(string kind, string message, Guid? previous, string? previousStep) =>
        new() { Summary = message, Reasons = [Reason(kind, message)], PreviousBuild = previous, PreviousStep = previousStep };

    private static ExplanationReason Reason(string kind, string message, IReadOnlyList<string>? names = null) =>
        new() { Kind = kind, Message = message, Names = names ?? [] };

    private static string Short(Guid id) => id.ToString("N")[..8];

    private static string Abbrev(string digest) => digest.Length > 19 ? digest[..19] : digest.Length == 0 ? "none" : digest;
}
