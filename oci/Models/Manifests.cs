using System.Text.Json;
using System.Text.Json.Serialization;

namespace Farm.Oci;

/// <summary>
/// An image manifest, OCI (<see cref="MediaTypes.OciManifest"/>) or Docker v2 schema 2
/// (<see cref="MediaTypes.DockerManifest"/>); the two share this shape.
/// </summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/manifest.md</remarks>
public sealed record ImageManifest
{
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    [JsonPropertyName("mediaType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; } = MediaTypes.OciManifest;

    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }

    [JsonPropertyName("config")]
    public required Descriptor Config { get; init; }

    [JsonPropertyName("layers")]
    public required IReadOnlyList<Descriptor> Layers { get; init; }

    [JsonPropertyName("subject")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Descriptor? Subject { get; init; }

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Fields this model does not know, kept so a read-modify-write loses nothing.</summary>
    /// <remarks>Settable because System.Text.Json cannot fill init-only extension data.</remarks>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>True for a Docker v2s2 manifest.</summary>
    [JsonIgnore]
    public bool IsDocker => MediaType == MediaTypes.DockerManifest;

    /// <summary>
    /// The same manifest in the Docker v2s2 vocabulary: manifest, config and gzip layer media types.
    /// zstd layers have no Docker media type and are refused.
    /// </summary>
    public ImageManifest ToDocker() => this with
    {
        MediaType = MediaTypes.DockerManifest,
        Config = Config with { MediaType = MediaTypes.DockerConfig },
        Layers = [.. Layers.Select(l => l with { MediaType = ToDockerLayer(l.MediaType) })],
    };

    /// <summary>The same manifest in the OCI vocabulary.</summary>
    public ImageManifest ToOci() => this with
    {
        MediaType = MediaTypes.OciManifest,
        Config = Config with { MediaType = MediaTypes.OciConfig },
        Layers = [.. Layers.Select(l => l with { MediaType = ToOciLayer(l.MediaType) })],
    };

    private static string ToDockerLayer(string mediaType) => mediaType switch
    {
        MediaTypes.OciLayerGzip or MediaTypes.DockerLayerGzip => MediaTypes.DockerLayerGzip,
        MediaTypes.DockerForeignLayerGzip => mediaType,
        _ => throw new InvalidManifestException($"Layer media type '{mediaType}' has no Docker v2s2 equivalent; build with gzip layers to write a Docker manifest."),
    };

    private static string ToOciLayer(string mediaType) => mediaType == MediaTypes.DockerLayerGzip ? MediaTypes.OciLayerGzip : mediaType;
}

/// <summary>An image index (OCI) or manifest list (Docker): one manifest per platform.</summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/image-index.md</remarks>
public sealed record ImageIndex
{
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    [JsonPropertyName("mediaType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MediaType { get; init; } = MediaTypes.OciIndex;

    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }

    [JsonPropertyName("manifests")]
    public required IReadOnlyList<Descriptor> Manifests { get; init; }

    [JsonPropertyName("subject")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Descriptor? Subject { get; init; }

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>
    /// The manifest for <paramref name="platform"/>: an exact os/architecture match, preferring an entry
    /// whose variant matches too; attestation manifests (platform unknown/unknown) are never chosen.
    /// </summary>
    public Descriptor? FindManifest(Platform platform)
    {
        ArgumentNullException.ThrowIfNull(platform);
        var candidates = Manifests
            .Where(m => m.Platform is { } p && p.Os == platform.Os && p.Architecture == platform.Architecture)
            .ToList();
        return candidates.FirstOrDefault(m => m.Platform!.Variant == platform.Variant) ?? candidates.FirstOrDefault();
    }
}
