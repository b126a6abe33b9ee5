using Farm.Contracts;

namespace Farm.Coordinator.Assembly;

/// <summary>The inputs of an image assembly do not fit together (FARM4101).</summary>
public sealed class ImageAssemblyException(string message)
    : FarmException(FarmErrorCodes.ImageAssembly, message);

/// <summary>A layer cannot be written in the requested manifest format, e.g. zstd in Docker v2s2 (FARM4102).</summary>
public sealed class UnsupportedLayerFormatException(string message)
    : FarmException(FarmErrorCodes.UnsupportedLayerFormat, message);

/// <summary>A push destination is not a usable <c>host[:port]/repository[:tag]</c> reference (FARM4110).</summary>
public sealed class InvalidPushTargetException(string target, string reason)
    : FarmException(FarmErrorCodes.InvalidPushTarget, $"'{target}' cannot be pushed to: {reason}. Give a tag such as 127.0.0.1:5100/team/app:1.0.")
{
    public string Target { get; } = target;
}

/// <summary>No blob source holds a blob the image needs (FARM4111).</summary>
public sealed class BlobUnavailableException(string digest, string destination, IEnumerable<string> searched)
    : FarmException(FarmErrorCodes.BlobUnavailable, $"Blob {digest} needed for {destination} is in none of: {string.Join(", ", searched)}. It may have been garbage-collected from the cache; rebuild without the cache for that step (or push the base image again).")
{
    public string Digest { get; } = digest;
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
