using Farm.Contracts;

namespace Farm.Oci;

/// <summary>A directory is not a usable OCI image layout, or a tag is missing from it.</summary>
public sealed class OciLayoutException(string path, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.OciLayout, message, inner)
{
    public string Path { get; } = path;
}
