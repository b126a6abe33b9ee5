namespace Farm.Oci;

/// <summary>
/// An image as the exact bytes its digests cover: the manifest and the config, parsed and as bytes. What is pushed,
/// exported or stored byte for byte (re-serializing either would change the image's digest); the layers it lists
/// live in blob stores.
/// </summary>
/// <remarks>
/// Shared by an image the coordinator assembled and one from the local image store, so that one pusher and one
/// exporter serve both. https://github.com/opencontainers/image-spec/blob/main/manifest.md
/// </remarks>
public abstract record ImageContent
{
    /// <summary>The manifest's media type, digest and size: what a tag points at.</summary>
    public required Descriptor ManifestDescriptor { get; init; }

    public required ImageManifest Manifest { get; init; }

    public required ReadOnlyMemory<byte> ManifestBytes { get; init; }

    public required ImageConfig Config { get; init; }

    public required ReadOnlyMemory<byte> ConfigBytes { get; init; }

    /// <summary>The config blob as the manifest names it.</summary>
    public Descriptor ConfigDescriptor => Manifest.Config;

    /// <summary>The manifest digest.</summary>
    public Digest Digest => ManifestDescriptor.Digest;

    /// <summary>The layers, bottom first, with their diff_ids from the config.</summary>
    public IEnumerable<(Descriptor Layer, Digest DiffId)> LayersWithDiffIds => Manifest.Layers.Zip(Config.DiffIds);
}
