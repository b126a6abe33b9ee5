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
    /// <exception cref="InvalidSubmissionException">A required value is missing, or a field or one of its values is null (FARM4211).</exception>
    public static void Validate(SubmitBuild submit, string cacheStore)
    {
        ArgumentNullException.ThrowIfNull(submit);
        if (string.IsNullOrWhiteSpace(submit.Dockerfile))
        {
            throw new InvalidSubmissionException("The submission has no Dockerfile text: set \"dockerfile\" to the Dockerfile's content.");
        }

        if (string.IsNullOrWhiteSpace(submit.ContextDigest) && string.IsNullOrWhiteSpace(submit.ContextDirectory))
        {
            throw new InvalidSubmissionException($"The submission has no context: upload the context tar (and its index, for COPY and ADD from it) to {cacheStore} and set \"contextDigest\" (and \"contextIndexDigest\").");
        }

        // JSON null reaches non-nullable members (a binder does not refuse it): the build would meet it much later,
        // as an internal error, so it is refused here, by name.
        if (submit.DockerfilePath is null)
        {
            throw new InvalidSubmissionException("\"dockerfilePath\" is null: set it to the Dockerfile's path in the context, or leave it out for \"Dockerfile\".");
        }

        // Both digests are checked for form here, so a malformed one is a 400 (or a refused message) now rather than a
        // failed build later; the optional index is checked only when it is given.
        CheckDigest("contextDigest", submit.ContextDigest);
        CheckDigest("contextIndexDigest", submit.ContextIndexDigest);
        RequireValues(submit.BuildArgs, "buildArgs");
        RequireValues(submit.Labels, "labels");
        RequireItems(submit.Tags, "tags");
        RequireItems(submit.Entitlements, "entitlements");
    }

    private static void CheckDigest(string field, string? value)
    {
        if (!string.IsNullOrEmpty(value) && !Farm.Oci.Digest.TryParse(value, out _, out var reason))
        {
            throw new InvalidSubmissionException($"\"{field}\" is not a digest ('{value}': {reason}). Give it as algorithm:hex, e.g. sha256: and the 64 lower-case hex digits of the blob's SHA-256.");
        }
    }

    private static void RequireValues(IReadOnlyDictionary<string, string>? map, string field)
    {
        if (map is null)
        {
            throw new InvalidSubmissionException($"\"{field}\" is null: send an object of names and string values, or leave it out.");
        }

        foreach (var (name, value) in map)
        {
            if (value is null)
            {
                throw new InvalidSubmissionException($"\"{field}\" gives \"{(name.Length > 80 ? name[..80] + "..." : name)}\" no value (null): send a string (\"\" for an empty value) or leave the name out.");
            }
        }
    }

    private static void RequireItems(IReadOnlyList<string>? list, string field)
    {
        if (list is null)
        {
            throw new InvalidSubmissionException($"\"{field}\" is null: send an array of strings, or leave it out.");
        }

        if (list.Any(item => item is null))
        {
            throw new InvalidSubmissionException($"\"{field}\" holds a null: send only strings.");
        }
    }
}
