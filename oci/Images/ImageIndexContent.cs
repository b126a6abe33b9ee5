namespace Farm.Oci.Images;

/// <summary>
/// A multi-platform image: an OCI image index as the exact bytes its digest covers, and the images it lists, one per
/// platform. What <c>farm build --platform a,b</c> pushes and exports under one reference.
/// https://github.com/opencontainers/image-spec/blob/main/image-index.md
/// </summary>
public sealed record ImageIndexContent
{
    /// <summary>The index's media type, digest and size: what a tag points at.</summary>
    public required Descriptor IndexDescriptor { get; init; }

    public required ImageIndex Index { get; init; }

    public required ReadOnlyMemory<byte> IndexBytes { get; init; }

    /// <summary>The images, in the index's order, each with the platform its entry names.</summary>
    public required IReadOnlyList<(Platform Platform, ImageContent Image)> Images { get; init; }

    /// <summary>The index's digest.</summary>
    public Digest Digest => IndexDescriptor.Digest;

    /// <summary>
    /// An index of <paramref name="images"/>, in that order: each entry names its manifest and platform, as BuildKit
    /// writes them (no annotations, so the same images always make the same index).
    /// </summary>
    public static ImageIndexContent Create(IReadOnlyList<(Platform Platform, ImageContent Image)> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0)
        {
            throw new ArgumentException("An image index lists at least one image.", nameof(images));
        }

        var index = new ImageIndex
        {
            Manifests = [.. images.Select(i => i.Image.ManifestDescriptor with { Platform = i.Platform, Annotations = null })],
        };
        var bytes = OciJson.Serialize(index);
        return new ImageIndexContent
        {
            IndexDescriptor = new Descriptor { MediaType = MediaTypes.OciIndex, Digest = Digest.Sha256(bytes), Size = bytes.Length },
            Index = index,
            IndexBytes = bytes,
            Images = images,
        };
    }
}
