using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Coordinator.Builds;

/// <summary>
/// A <see cref="BuildEvent"/> as one JSON object, <c>type</c> (the event's class name) first and then its fields in
/// camelCase: the lines of <c>GET /builds/{id}/events</c>, and how the build grain and the shared event stream
/// (<see cref="BuildEventStream"/>) keep its events. A line of a build's event log also carries <c>seq</c> after
/// <c>type</c>: the event's number in its build, 1, 2, 3, ... (see <see cref="SequencedBuildEvent"/>).
/// </summary>
public static class BuildEventJson
{
    /// <summary>camelCase like every other JSON the coordinator writes.</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    private static readonly Dictionary<string, Type> Types = new[]
    {
        typeof(BuildStarted), typeof(BuildResumed), typeof(BaseImageResolved), typeof(StepStarted), typeof(StepFinished),
        typeof(StepLog), typeof(BuildFinished), typeof(BuildFailed), typeof(ContextPacked), typeof(ImageStored), typeof(CacheImported), typeof(CacheExported),
        typeof(ContextFetched),
    }.ToDictionary(t => t.Name, StringComparer.Ordinal);

    public static JsonObject ToNode(BuildEvent buildEvent) => ToNode(buildEvent, seq: null);

    /// <summary>The event as an object; with <paramref name="seq"/>, its number in the build follows <c>type</c>.</summary>
    public static JsonObject ToNode(BuildEvent buildEvent, long? seq)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        var fields = JsonSerializer.SerializeToNode(buildEvent, buildEvent.GetType(), Options)!.AsObject();
        var result = new JsonObject { ["type"] = buildEvent.GetType().Name };
        if (seq is { } number)
        {
            result["seq"] = number;
        }

        foreach (var (name, value) in fields.ToList())
        {
            fields.Remove(name);
            result[name] = value;
        }

        return result;
    }

    public static string Serialize(BuildEvent buildEvent) => ToNode(buildEvent).ToJsonString(Options);

    public static string Serialize(SequencedBuildEvent entry) => ToNode(entry.Event, entry.Seq).ToJsonString(Options);

    /// <summary>The <c>seq</c> of a line; null when it has none (written before events were numbered) or is not an event.</summary>
    public static long? Seq(string line)
    {
        try
        {
            return JsonNode.Parse(line) is JsonObject node && node["seq"] is JsonValue value && value.TryGetValue<long>(out var seq) ? seq : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The event a line describes; null for a type this version does not know (written by a newer coordinator).</summary>
    /// <exception cref="JsonException">The line is not an event object.</exception>
    public static BuildEvent? Deserialize(string line)
    {
        var node = JsonNode.Parse(line)?.AsObject() ?? throw new JsonException("A build event line is empty.");
        return (string?)node["type"] is { } name && Types.TryGetValue(name, out var type)
            ? (BuildEvent?)node.Deserialize(type, Options)
            : null;
    }
}
