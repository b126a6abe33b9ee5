using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Farm.Oci;

/// <summary>Reading and writing manifests and indexes with source-generated serializers.</summary>
public static class OciJson
{
    /// <summary>Compact output with no HTML escaping, as registries and other clients write it.</summary>
    internal static readonly JsonSerializerOptions Compact = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = false,
    };

    private static readonly OciJsonContext Context = new(new JsonSerializerOptions(Compact));

    public static byte[] Serialize(ImageManifest manifest) => JsonSerializer.SerializeToUtf8Bytes(manifest, Context.ImageManifest);

    public static byte[] Serialize(ImageIndex index) => JsonSerializer.SerializeToUtf8Bytes(index, Context.ImageIndex);

    /// <summary>
    /// A JSON tree as bytes, compact (or indented) and without HTML escaping; the same bytes the serializer writes for it
    /// with <see cref="Compact"/>, without its reflection-based path.
    /// </summary>
    public static byte[] ToBytes(JsonNode node, bool indented = false)
    {
        ArgumentNullException.ThrowIfNull(node);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = Compact.Encoder, Indented = indented }))
        {
            node.WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static ImageManifest ParseManifest(ReadOnlySpan<byte> json) =>
        Parse(json, Context.ImageManifest, "manifest");

    public static ImageIndex ParseIndex(ReadOnlySpan<byte> json) =>
        Parse(json, Context.ImageIndex, "index");

    /// <summary>The media type a manifest document declares, or null when it has none.</summary>
    public static string? PeekMediaType(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("mediaType", out var m)
                ? m.GetString()
                : null;
        }
        catch (JsonException e)
        {
            throw new InvalidManifestException($"The manifest is not valid JSON: {e.Message}", e);
        }
    }

    private static T Parse<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, string what)
    {
        try
        {
            return JsonSerializer.Deserialize(json, info) ?? throw new InvalidManifestException($"The {what} is empty (JSON null).");
        }
        catch (JsonException e)
        {
            throw new InvalidManifestException($"The {what} could not be read: {e.Message}", e);
        }
    }
}

[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(Descriptor))]
internal sealed partial class OciJsonContext : JsonSerializerContext;
