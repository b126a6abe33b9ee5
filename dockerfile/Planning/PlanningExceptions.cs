using Farm.Contracts;

namespace Farm.Dockerfile.Planning;

/// <summary>
/// FARM4203: the context index a submitted build names is missing from the cache store or unreadable, or a step reads
/// the context of a submission that named no index.
/// </summary>
public sealed class ContextIndexUnavailableException : FarmException
{
    public ContextIndexUnavailableException(string digest, string store, string reason, Exception? inner = null)
        : base(FarmErrorCodes.ContextIndexUnavailable, $"The context index {digest} cannot be read from {store}: {reason}. Upload the context and its index again (farm build does it) and resubmit.", inner)
    {
    }

    private ContextIndexUnavailableException(string message)
        : base(FarmErrorCodes.ContextIndexUnavailable, message)
    {
    }

    /// <summary>A step that reads the context (COPY, ADD, RUN --mount from it), in a submission without "contextIndexDigest".</summary>
    public static ContextIndexUnavailableException NotNamed(string fileName, string location, string stepId, string display) =>
        new($"{fileName}:{location}: step {stepId} `{display}` reads the build context, but the submission names no context index, which the step's cache key is made from. Upload the context index beside the context tar (farm build does both) and set \"contextIndexDigest\".");
}
