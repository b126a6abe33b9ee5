using System.Text.Json.Serialization;

namespace Farm.Oci;

/// <summary>A reference to content: media type, digest and size, plus optional fields.</summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/descriptor.md</remarks>
public sealed record Descriptor
{
    [JsonPropertyName("mediaType")]
    public required string MediaType { get; init; }

    [JsonPropertyName("digest")]
    public required Digest Digest { get; init; }

    [JsonPropertyName("size")]
    public required long Size { get; init; }

    [JsonPropertyName("urls")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Urls { get; init; }

    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Only in index entries: the platform the manifest is for.</summary>
    [JsonPropertyName("platform")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Platform? Platform { get; init; }

    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; init; }
}

/// <summary>An OS and architecture an image runs on.</summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/image-index.md#image-index-property-descriptions</remarks>
public sealed record Platform
{
    [JsonPropertyName("architecture")]
    public required string Architecture { get; init; }

    [JsonPropertyName("os")]
    public required string Os { get; init; }

    [JsonPropertyName("os.version")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? OsVersion { get; init; }

    [JsonPropertyName("os.features")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? OsFeatures { get; init; }

    [JsonPropertyName("variant")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    /// <summary>linux/amd64, the platform this farm builds for.</summary>
    public static Platform LinuxAmd64 { get; } = new() { Os = "linux", Architecture = "amd64" };

    /// <summary>linux/arm64, the other platform a farm worker runs (natively, or emulated by qemu-user-static).</summary>
    public static Platform LinuxArm64 { get; } = new() { Os = "linux", Architecture = "arm64" };

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    /// <summary>
    /// Parses <c>os/arch[/variant]</c> (or a bare <c>arch</c>, taken as linux), normalized as containerd's platforms
    /// package does: <c>x86_64</c> is amd64, <c>aarch64</c> is arm64, and arm64's default variant <c>v8</c> is dropped.
    /// Null when <paramref name="text"/> is not a platform.
    /// </summary>
    public static Platform? TryParse(string? text)
    {
        var parts = (text ?? string.Empty).Trim().ToLowerInvariant().Split('/');
        if (parts.Length == 1)
        {
            parts = ["linux", parts[0]];
        }

        if (parts.Length is > 3 || parts.Any(p => p.Length == 0 || p.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not '_' and not '-' and not '.')))
        {
            return null;
        }

        var architecture = parts[1] switch { "x86_64" or "x86-64" => "amd64", "aarch64" => "arm64", var a => a };
        var variant = parts.Length == 3 ? parts[2] : null;
        if (architecture == "arm64" && variant == "v8")
        {
            variant = null;
        }

        return new Platform { Os = parts[0], Architecture = architecture, Variant = variant };
    }
}
