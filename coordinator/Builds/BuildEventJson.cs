using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Coordinator.Builds;

/// <summary>
/// A <see cref="BuildEvent"/> as one JSON object, <c>type</c> (the event's class name) first and then its fields in
/// camelCase: the lines of <c>GET /builds/{id}/events</c>, and how the build grain persists its events.
/// </summary>
public static class BuildEventJson
{
    /// <summary>camelCase like every other JSON the coordinator writes.</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    private static readonly Dictionary<string, Type> Types = new[]
    {
        typeof(BuildStarted), typeof(BuildResumed), typeof(BaseImageResolved), typeof(StepStarted), typeof(StepFinished),
        typeof(StepLog), typeof(BuildFinished), typeof(BuildFailed), typeof(ContextPacked), typeof(ImageStored),
    }.ToDictionary(t => t.Name, StringComparer.Ordinal);

    public static JsonObject ToNode(BuildEvent buildEvent)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        var fields = JsonSerializer.SerializeToNode(buildEvent, buildEvent.GetType(), Options)!.AsObject();
        var result = new JsonObject { ["type"] = buildEvent.GetType().Name };
        foreach (var (name, value) in fields.ToList())
        {
            fields.Remove(name);
            result[name] = value;
        }

        return result;
    }

    public static string Serialize(BuildEvent buildEvent) => ToNode(buildEvent).ToJsonString(Options);

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
