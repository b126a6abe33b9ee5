using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Oci;

namespace Farm.Coordinator.Cache;

/// <summary>
/// What the action cache maps a cache key to (docs/architecture.md, "Storage"): the layer a step produced, or the fact that
/// it produced none, and where it came from.
/// </summary>
public sealed record ActionCacheEntry
{
    /// <summary>The layer blob; null when the step changed nothing (an <c>empty_layer</c> history entry).</summary>
    public LayerRef? Layer { get; init; }

    /// <summary>The worker that built the layer.</summary>
    public required string Worker { get; init; }

    public required DateTimeOffset Created { get; init; }

    /// <summary>The build that first produced the layer.</summary>
    public required Guid BuildId { get; init; }

    public bool IsEmptyLayer => Layer is null;
}

/// <summary>
/// The stored form of an <see cref="ActionCacheEntry"/>, the same JSON in Redis and in files:
/// <c>{"v":1,"layer":{"digest","diff_id","media_type","size"}|null,"empty_layer":bool,"worker","created","build_id"}</c>.
/// </summary>
internal static class ActionCacheJson
{
    public const int Version = 1;

    public static byte[] Serialize(ActionCacheEntry entry) =>
        JsonSerializer.SerializeToUtf8Bytes(
            new StoredEntry(
                Version,
                entry.Layer is { } l ? new StoredLayer(l.Digest, l.DiffId, l.MediaType, l.Size) : null,
                entry.IsEmptyLayer,
                entry.Worker,
                entry.Created,
                entry.BuildId),
            ActionCacheJsonContext.Default.StoredEntry);

    /// <exception cref="ActionCacheCorruptEntryException">The bytes are not a valid entry of this version.</exception>
    public static ActionCacheEntry Deserialize(string key, ReadOnlySpan<byte> bytes)
    {
        StoredEntry? stored;
        try
        {
            stored = JsonSerializer.Deserialize(bytes, ActionCacheJsonContext.Default.StoredEntry);
        }
        catch (JsonException e)
        {
            throw new ActionCacheCorruptEntryException(key, e.Message, e);
        }

        if (stored is null || stored.V != Version)
        {
            throw new ActionCacheCorruptEntryException(key, $"format version {stored?.V} is not {Version}");
        }

        if (stored.EmptyLayer != (stored.Layer is null))
        {
            throw new ActionCacheCorruptEntryException(key, "empty_layer disagrees with layer");
        }

        if (stored.Layer is { } l && (!Digest.TryParse(l.Digest, out _) || !Digest.TryParse(l.DiffId, out _) || l.Size < 0 || string.IsNullOrEmpty(l.MediaType)))
        {
            throw new ActionCacheCorruptEntryException(key, "the layer descriptor is invalid");
        }

        return new ActionCacheEntry
        {
            Layer = stored.Layer is { } s ? new LayerRef(s.Digest, s.DiffId, s.MediaType, s.Size) : null,
            Worker = stored.Worker ?? string.Empty,
            Created = stored.Created,
            BuildId = stored.BuildId,
        };
    }
}

internal sealed record StoredLayer(
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("diff_id")] string DiffId,
    [property: JsonPropertyName("media_type")] string MediaType,
    [property: JsonPropertyName("size")] long Size);

internal sealed record StoredEntry(
    [property: JsonPropertyName("v")] int V,
    [property: JsonPropertyName("layer")] StoredLayer? Layer,
    [property: JsonPropertyName("empty_layer")] bool EmptyLayer,
    [property: JsonPropertyName("worker")] string? Worker,
    [property: JsonPropertyName("created")] DateTimeOffset Created,
    [property: JsonPropertyName("build_id")] Guid BuildId);

[JsonSerializable(typeof(StoredEntry))]
internal sealed partial class ActionCacheJsonContext : JsonSerializerContext;
