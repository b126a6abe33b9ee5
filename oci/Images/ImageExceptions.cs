using Farm.Contracts;

namespace Farm.Oci.Images;

/// <summary>A name or id matches no image of the local store.</summary>
public sealed class NoSuchImageException(string name)
    : FarmException(FarmErrorCodes.NoSuchImage, $"no such image: {name}. List the local images with farm images, or fetch it with farm pull.")
{
    public string Name { get; } = name;
}

/// <summary>An id prefix matches more than one image.</summary>
public sealed class AmbiguousImageIdException(string prefix, IReadOnlyList<string> matches)
    : FarmException(FarmErrorCodes.AmbiguousImageId, $"the id prefix '{prefix}' matches {matches.Count} images ({string.Join(", ", matches)}); give more characters of the id or a name.")
{
    public string Prefix { get; } = prefix;
}

/// <summary>A name given to the store is not an image reference, or names a digest where a tag is needed.</summary>
public sealed class InvalidImageNameException(string name, string reason)
    : FarmException(FarmErrorCodes.InvalidImageName, $"'{name}' cannot name a local image: {reason}. Use [registry/]repository[:tag], e.g. 127.0.0.1:5100/app:1.")
{
    public string Name { get; } = name;
}

/// <summary>An archive or rootfs tar given to import or load cannot be read as one.</summary>
public sealed class InvalidImageArchiveException(string path, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.InvalidImageArchive, $"{path}: {message}", inner)
{
    public string Path { get; } = path;
}

/// <summary>The local store's lock could not be taken in time: another farm process holds it.</summary>
public sealed class ImageStoreBusyException(string path, TimeSpan waited, Exception? inner = null)
    : FarmException(FarmErrorCodes.ImageStoreBusy, $"the image store lock {path} is still held by another farm process after {waited.TotalSeconds:0} s. Wait for it to finish, or remove the lock file if no farm process is running.", inner)
{
    public string Path { get; } = path;
}

/// <summary>An <c>--output</c> value is malformed or names an unknown exporter (FARM4120).</summary>
public sealed class InvalidOutputException(string output, string reason)
    : FarmException(FarmErrorCodes.InvalidOutput, $"--output '{output}' is not valid: {reason}. Use type=oci|docker|local,dest=PATH (type=oci also takes tar=false for a layout directory).")
{
    public string Output { get; } = output;
}

/// <summary>Writing an output failed, or a layer did not decompress to its diff_id (FARM4121).</summary>
public sealed class OutputWriteException(string destination, string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.OutputWrite, message, inner)
{
    public string Destination { get; } = destination;
}

/// <summary>An image a container uses would be deleted (<c>farm rmi</c> without <c>-f</c>).</summary>
public sealed class ImageInUseException(string name, string container, Digest image)
    : FarmException(FarmErrorCodes.ImageInUse, $"cannot remove {name}: container {container} uses its image {image.Encoded[..12]}. Remove the container first (farm rm {container}), or untag the image anyway with farm rmi -f.")
{
    public string Name { get; } = name;

    public string Container { get; } = container;
}

/// <summary>A multi-platform image was to be exported as a type that holds one image (FARM4320).</summary>
public sealed class MultiPlatformOutputException(string type, int platforms)
    : FarmException(FarmErrorCodes.MultiPlatformOutput, $"--output type={type} holds one image, but this build makes {platforms} (one per platform). Use --output type=oci (an image index), --push, or build one --platform.")
{
    public string Type { get; } = type;
}
