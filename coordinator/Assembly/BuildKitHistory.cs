using System.Globalization;
using System.Text;
using Farm.Dockerfile.Graph;

namespace Farm.Coordinator.Assembly;

/// <summary>
/// The history <c>created_by</c> text BuildKit's Dockerfile frontend writes for each instruction, so that
/// <c>docker history</c> of a Farm image reads like one built with <c>docker buildx build</c>.
/// </summary>
/// <remarks>
/// Follows dockerfile2llb (<c>commitToHistory</c>): steps that run on a snapshot get a <c># buildkit</c> suffix;
/// CMD, ENTRYPOINT, EXPOSE, VOLUME and SHELL are printed with Go's <c>%q</c>/<c>%v</c> formatting of their values.
/// https://github.com/opencontainers/image-spec/blob/main/config.md#properties (history).
/// </remarks>
public static class BuildKitHistory
{
    /// <summary>The comment BuildKit puts on every history entry its Dockerfile frontend writes.</summary>
    public const string Comment = "buildkit.dockerfile.v0";

    private const string Suffix = " # buildkit";

    public static string CreatedBy(BuildStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        return (step.Instruction, step.Payload) switch
        {
            ("RUN", RunPayload run) => "RUN " + RunCommand(step, run) + Suffix,
            (_, CopyPayload copy) => CopyCommand(copy) + Suffix,
            ("WORKDIR", WorkdirPayload workdir) => "WORKDIR " + workdir.Path,
            ("CMD" or "ENTRYPOINT", ConfigPayload config) => step.Instruction + " " + GoQuotedList(config.Values),
            ("EXPOSE", ConfigPayload config) => "EXPOSE map[" + string.Join(' ', config.Values.Order(StringComparer.Ordinal).Select(p => p + ":{}")) + "]",
            ("VOLUME" or "SHELL", ConfigPayload config) => step.Instruction + " [" + string.Join(' ', config.Values) + "]",
            ("LABEL", ConfigPayload config) => "LABEL " + string.Join(' ', config.Values),
            ("MAINTAINER", ConfigPayload config) => "MAINTAINER " + string.Join(' ', config.Values),
            _ => step.Text,
        };
    }

    /// <summary>
    /// BuildKit's <c>runCommandString</c>: the build args in scope as <c>|N K=v ...</c> before the argv, so two
    /// runs that differ only by an ARG value differ in history as they do in cache.
    /// </summary>
    private static string RunCommand(BuildStep step, RunPayload run)
    {
        var values = run.Env
            .Select(e => e.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0], StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Last()[1], StringComparer.Ordinal);
        var args = step.UsedArgs.Select(name => $"{name}={values.GetValueOrDefault(name) ?? string.Empty}").ToList();
        var prefix = args.Count == 0 ? string.Empty : $"|{args.Count.ToString(CultureInfo.InvariantCulture)} {string.Join(' ', args)} ";
        return prefix + string.Join(' ', run.Argv);
    }

    private static string CopyCommand(CopyPayload copy)
    {
        var text = new StringBuilder(copy.Instruction);
        foreach (var source in copy.Sources)
        {
            text.Append(' ').Append(source);
        }

        foreach (var inline in copy.InlineFiles)
        {
            text.Append(" <<").Append(inline.Name);
        }

        return text.Append(' ').Append(copy.Destination).ToString();
    }

    /// <summary>Go's <c>fmt.Sprintf("%q", []string)</c>: <c>["a" "b"]</c> with strconv.Quote escaping.</summary>
    internal static string GoQuotedList(IEnumerable<string> values) => "[" + string.Join(' ', values.Select(GoQuote)) + "]";

    internal static string GoQuote(string value)
    {
        var text = new StringBuilder(value.Length + 2).Append('"');
        foreach (var rune in value.EnumerateRunes())
        {
            switch (rune.Value)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\t': text.Append("\\t"); break;
                case '\r': text.Append("\\r"); break;
                case < 0x20 or 0x7f: text.Append(CultureInfo.InvariantCulture, $"\\x{rune.Value:x2}"); break;
                default: text.Append(rune.ToString()); break;
            }
        }

        return text.Append('"').ToString();
    }
}
