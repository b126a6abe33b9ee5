using Farm.Contracts;

namespace Farm.Coordinator.Builds;

/// <summary>
/// What a <see cref="SubmitBuild"/> must hold before the coordinator records it, however it arrived (<c>POST /builds</c>
/// or the <see cref="SubmitBuildConsumer"/>'s queue). A submission that passes is one the build service and the
/// orchestrator can read without meeting a missing value; one that does not is refused with FARM4211 naming the field.
/// </summary>
public static class SubmissionValidation
{
    /// <summary>Refuses a submission a build cannot run from.</summary>
    /// <param name="submit">The submission as deserialized.</param>
    /// <param name="cacheStore">Where the context is to be uploaded, for the message.</param>
    /// <exception cref="InvalidSubmissionException">A required value is missing or a field holds null (FARM4211).</exception>
    public static void Validate(SubmitBuild submit, string cacheStore)
    {
        ArgumentNullException.ThrowIfNull(submit);
        if (string.IsNullOrWhiteSpace(submit.Dockerfile))
        {
            throw new InvalidSubmissionException("The submission has no Dockerfile text: set \"dockerfile\" to the Dockerfile's content.");
        }

        if (string.IsNullOrWhiteSpace(submit.ContextDigest) && string.IsNullOrWhiteSpace(submit.ContextDirectory))
        {
            throw new InvalidSubmissionException($"The submission has no context: upload the context tar and its index to {cacheStore} and set \"contextDigest\" and \"contextIndexDigest\".");
        }
    }
}
