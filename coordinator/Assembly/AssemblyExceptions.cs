using Farm.Contracts;

namespace Farm.Coordinator.Assembly;

/// <summary>The inputs of an image assembly do not fit together (FARM4101).</summary>
public sealed class ImageAssemblyException(string message)
    : FarmException(FarmErrorCodes.ImageAssembly, message);

/// <summary>A layer cannot be written in the requested manifest format, e.g. zstd in Docker v2s2 (FARM4102).</summary>
public sealed class UnsupportedLayerFormatException(string message)
    : FarmException(FarmErrorCodes.UnsupportedLayerFormat, message);
