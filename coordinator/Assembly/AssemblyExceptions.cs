using Farm.Contracts;

namespace Farm.Coordinator.Assembly;

/// <summary>The inputs of an image assembly do not fit together (FARM4101).</summary>
public sealed class ImageAssemblyException(string message)
    : FarmException(FarmErrorCodes.ImageAssembly, message);

/// <summary>A layer cannot be written in the requested manifest format, e.g. zstd in Docker v2s2 (FARM4102).</summary>
public sealed class UnsupportedLayerFormatException(string message)
    : FarmException(FarmErrorCodes.UnsupportedLayerFormat, message);

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
