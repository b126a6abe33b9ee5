using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Dockerfile.Graph;

namespace Farm.Cli.Progress;

/// <summary>How <c>farm build</c> shows a build: <c>--progress auto|tty|plain|rawjson</c>.</summary>
internal enum ProgressMode
{
    Auto,
    Tty,
    Plain,
    RawJson,
}

/// <summary>
/// Shows build events. Every event is the JSON object the coordinator's <c>GET /builds/{id}/events</c> streams
/// (<c>type</c> first, then the event's camelCase fields), whether it came from the embedded farm or over HTTP, so the
/// renderers cannot tell the two apart and <c>rawjson</c> prints exactly what the API serves.
/// </summary>
internal interface IProgressRenderer : IDisposable
{
    void Render(JsonObject buildEvent);

    /// <summary>The build ended (the last event was rendered): leave the screen in its final state.</summary>
    void Complete();
}

/// <summary>Event JSON and the renderers' shared helpers.</summary>
internal static class BuildProgress
{
    /// <summary>camelCase, as the coordinator's API writes.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        TypeInfoResolver = CliJson.Default,
    };

    public static IProgressRenderer Create(ProgressMode mode, StepLabels labels, TextWriter output, TextWriter error)
    {
        if (mode == ProgressMode.Auto)
        {
            mode = Console.IsErrorRedirected || Environment.GetEnvironmentVariable("TERM") is "dumb" ? ProgressMode.Plain : ProgressMode.Tty;
        }

        return mode switch
        {
            ProgressMode.RawJson => new RawJsonRenderer(output),
            ProgressMode.Tty => new TtyRenderer(labels, error),
            _ => new PlainRenderer(labels, error),
        };
    }

    public static ProgressMode ParseMode(string? value) => value?.ToLowerInvariant() switch
    {
        null or "" or "auto" => ProgressMode.Auto,
        "tty" => ProgressMode.Tty,
        "plain" => ProgressMode.Plain,
        "rawjson" => ProgressMode.RawJson,
        _ => throw new InvalidCliArgumentException($"--progress {value} is not a progress mode; use auto, tty, plain or rawjson"),
    };

    /// <summary>An event of the CLI's own (<c>ContextPacked</c>, <c>ImageStored</c>) in the same shape.</summary>
    public static JsonObject Typed(string type, JsonObject fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var result = new JsonObject { ["type"] = type };
        foreach (var (name, value) in fields.ToList())
        {
            fields.Remove(name);
            result[name] = value;
        }

        return result;
    }

    public static string Str(JsonNode? node, string name) => node?[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : string.Empty;

    /// <summary>A number field, whatever CLR type built the node (an int from the CLI, a JsonElement over HTTP).</summary>
    public static double Num(JsonNode? node, string name) =>
        node?[name] is JsonValue v && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : 0;

    public static bool Flag(JsonNode? node, string name) => node?[name] is JsonValue v && v.ToJsonString() == "true";

    public static DateTimeOffset Time(JsonNode? node, string name) =>
        DateTimeOffset.TryParse(Str(node, name), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t) ? t : DateTimeOffset.UtcNow;

    public static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";

    public static string HumanBytes(long bytes)
    {
        string[] units = ["B", "kB", "MB", "GB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }

        return value.ToString(unit == 0 ? "0" : "0.0", CultureInfo.InvariantCulture) + units[unit];
    }
}

/// <summary>BuildKit's step labels (<c>[build 2/4] RUN make</c>) for the step ids of a build graph.</summary>
internal sealed class StepLabels
{
    private readonly Lazy<Dictionary<string, string>> _labels;

    public StepLabels(BuildGraph? graph)
        : this(() => graph)
    {
    }

    /// <summary>Labels of a graph still being parsed: asked for only once steps run, when it is there.</summary>
    public StepLabels(Func<BuildGraph?> graph)
    {
        _labels = new Lazy<Dictionary<string, string>>(() => Compute(graph()));
    }

    /// <summary><c>[stage k/n] DISPLAY</c>; a step the graph does not know shows its id.</summary>
    public string For(string stepId, string display) =>
        (_labels.Value.TryGetValue(stepId, out var label) ? label : $"[{stepId}]") + " " + display;

    private static Dictionary<string, string> Compute(BuildGraph? graph)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var stage in graph?.StagesToBuild ?? [])
        {
            var name = stage.Name ?? $"stage-{stage.Index.ToString(CultureInfo.InvariantCulture)}";
            var total = stage.Steps.Count + 1;
            for (var i = 0; i < stage.Steps.Count; i++)
            {
                labels[stage.Steps[i].Id] = $"[{name} {(i + 2).ToString(CultureInfo.InvariantCulture)}/{total.ToString(CultureInfo.InvariantCulture)}]";
            }
        }

        return labels;
    }
}
