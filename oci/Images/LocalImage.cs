namespace Farm.Oci.Images;

/// <summary>
/// One image of the local store with the exact bytes its digests cover, and its names: what <c>farm inspect</c>,
/// <c>farm save</c> and <c>farm push</c> work from.
/// </summary>
public sealed record LocalImage : ImageContent
{
    /// <summary>Every normalized name in the store that points at this manifest, in index.json order.</summary>
    public required IReadOnlyList<string> Names { get; init; }

    /// <summary>The image id, as docker shows it: the config digest.</summary>
    public Digest Id => Manifest.Config.Digest;

    /// <summary>The first 12 hex digits of <see cref="Id"/>, the IMAGE ID column of <c>docker images</c>.</summary>
    public string ShortId => Id.Encoded[..12];

    /// <summary>Config plus compressed layers: what the store holds for this image.</summary>
    public long Size => Manifest.Config.Size + Manifest.Layers.Sum(l => l.Size);
}

/// <summary>One row of <c>farm images</c>: a name (repository and tag) and the image it points at.</summary>
public sealed record ImageSummary(string? Repository, string? Tag, Digest Id, Digest ManifestDigest, DateTimeOffset? Created, long Size, string? Platform = null)
{
    public string ShortId => Id.Encoded[..12];
}

/// <summary>What <see cref="LocalImageStore.RemoveAsync(string, CancellationToken)"/> did: the names untagged and the image ids whose blobs went.</summary>
public sealed record ImageRemoval(IReadOnlyList<string> Untagged, IReadOnlyList<Digest> Deleted);
