namespace Farm.Oci;

/// <summary>Media types of OCI and Docker images.</summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/media-types.md</remarks>
public static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";

    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// <summary>Every manifest type Farm reads, for the registry <c>Accept</c> header.</summary>
    public static readonly IReadOnlyList<string> AllManifests = [OciIndex, OciManifest, DockerManifestList, DockerManifest];

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    public static bool IsLayer(string? mediaType) =>
        mediaType is OciLayerTar or OciLayerGzip or OciLayerZstd or DockerLayerGzip or DockerForeignLayerGzip;

    /// <summary>The compression a layer media type implies.</summary>
    public static LayerCompression CompressionOf(string mediaType) => mediaType switch
    {
        OciLayerTar => LayerCompression.None,
        OciLayerGzip or DockerLayerGzip or DockerForeignLayerGzip => LayerCompression.Gzip,
        OciLayerZstd => LayerCompression.Zstd,
        _ => throw new InvalidManifestException($"'{mediaType}' is not a layer media type Farm knows."),
    };

    /// <summary>The layer media type for a compression, in the OCI or the Docker v2s2 vocabulary.</summary>
    public static string LayerMediaType(LayerCompression compression, bool docker = false) => (compression, docker) switch
    {
        (LayerCompression.Gzip, true) => DockerLayerGzip,
        (LayerCompression.Gzip, false) => OciLayerGzip,
        (LayerCompression.Zstd, _) => OciLayerZstd,
        (LayerCompression.None, _) => OciLayerTar,
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };
}

/// <summary>How a layer tar is compressed.</summary>
public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
}
