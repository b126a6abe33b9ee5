using Farm.Contracts;

namespace Farm.Oci.Layers;

/// <summary>A layer entry's name has a <c>..</c> component that climbs above the root it is applied to.</summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/layer.md#filesystem-changeset-format</remarks>
public sealed class LayerPathEscapeException(string entryName)
    : FarmException(FarmErrorCodes.LayerPathEscape, $"Layer entry '{entryName}' climbs out of the target directory with '..'. The layer is malicious or corrupt; do not use it, rebuild it from a trusted source.")
{
    public string EntryName { get; } = entryName;
}

/// <summary>A layer entry has an absolute name; layer entries are relative to the root of the filesystem.</summary>
public sealed class LayerAbsolutePathException(string entryName)
    : FarmException(FarmErrorCodes.LayerAbsolutePath, $"Layer entry '{entryName}' has an absolute name; OCI layer entries must be relative. The layer is malicious or was written by a broken tool; rebuild it.")
{
    public string EntryName { get; } = entryName;
}

/// <summary>
/// A layer entry's path goes through a symbolic link that leads out of the root (an absolute target, or <c>..</c> above
/// the root) or loops; links that stay inside the root are resolved, not refused.
/// </summary>
public sealed class LayerSymlinkTraversalException(string entryName, string symlinkPath)
    : FarmException(FarmErrorCodes.LayerSymlinkTraversal, $"Layer entry '{entryName}' lies beneath '{symlinkPath}', a symbolic link that leads outside the target directory (an absolute target, or '..' above the root) or loops. The layer is malicious or was written by a broken tool; rebuild it with paths that stay inside the image.")
{
    public string EntryName { get; } = entryName;

    public string SymlinkPath { get; } = symlinkPath;
}

/// <summary>A hard link entry points outside the root, or at nothing the layer or its parents have.</summary>
public sealed class LayerHardlinkTargetException(string entryName, string target, string reason)
    : FarmException(FarmErrorCodes.LayerHardlinkTarget, $"Layer entry '{entryName}' is a hard link to '{target}', which {reason}. Hard links must point at a file inside the image that is already there; the layer is malicious or its parents are missing.")
{
    public string EntryName { get; } = entryName;

    public string Target { get; } = target;
}

/// <summary>A layer contains a block or character device and the caller did not allow devices.</summary>
public sealed class LayerDeviceNotAllowedException(string entryName)
    : FarmException(FarmErrorCodes.LayerDeviceNotAllowed, $"Layer entry '{entryName}' is a device node, which is not allowed here. Remove it from the layer, or set LayerApplyOptions.AllowDevices if you trust the layer.")
{
    public string EntryName { get; } = entryName;
}

/// <summary>The bytes are not a tar archive Farm can read (bad checksum, truncated, unsupported entry type).</summary>
public sealed class InvalidLayerTarException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.InvalidLayerTar, $"{message} Fetch the layer again; if it persists, the layer is corrupt and must be rebuilt.", inner);

/// <summary>A layer's compression is neither gzip, zstd nor none, or the compressed stream is corrupt.</summary>
public sealed class LayerCompressionException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.LayerCompression, $"{message} Farm reads uncompressed, gzip and zstd layers; check the layer's media type and fetch it again.", inner);

/// <summary>A file system call failed while a layer was applied or written.</summary>
public sealed class LayerIoException(string operation, string path, int errno)
    : FarmException(FarmErrorCodes.LayerIo, $"{operation} failed on '{path}': {Interop.ErrorText(errno)} (errno {errno}). Check free space, permissions (applying layers needs root) and that the file system supports the feature.")
{
    public string Path { get; } = path;

    public int Errno { get; } = errno;
}

/// <summary>An overlayfs upperdir uses a feature whose diff is not a plain tree (redirect_dir, metacopy).</summary>
public sealed class UnsupportedOverlayFeatureException(string path, string attribute)
    : FarmException(FarmErrorCodes.UnsupportedOverlayFeature, $"'{path}' carries the overlayfs attribute '{attribute}', so the upperdir alone does not describe the change. Mount the overlay with redirect_dir=off and metacopy=off.")
{
    public string Path { get; } = path;
}

/// <summary>Two entries of one layer conflict in a way that cannot be applied (a file where a directory is needed).</summary>
public sealed class LayerEntryConflictException(string entryName, string reason)
    : FarmException(FarmErrorCodes.LayerEntryConflict, $"Layer entry '{entryName}' cannot be applied: {reason}. The layer or its parents are inconsistent; rebuild the layer.")
{
    public string EntryName { get; } = entryName;
}
