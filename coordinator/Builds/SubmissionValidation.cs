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
        if (submit.ContextUrl is { } url)
        {
            // The farm fetches the context, and reads the Dockerfile from it when the submission has none.
            if (url.Kind is not ("git" or "tarball") || string.IsNullOrWhiteSpace(url.Url))
            {
                throw new InvalidSubmissionException("\"contextUrl\" needs \"kind\" git or tarball and a \"url\".");
            }

            if (!string.IsNullOrWhiteSpace(submit.ContextDigest) || !string.IsNullOrWhiteSpace(submit.ContextDirectory))
            {
                throw new InvalidSubmissionException("\"contextUrl\" names the context: leave \"contextDigest\" and \"contextDirectory\" out.");
            }
        }
        else if (string.IsNullOrWhiteSpace(submit.Dockerfile))
        {
            throw new InvalidSubmissionException("The submission has no Dockerfile text: set \"dockerfile\" to the Dockerfile's content.");
        }

        if (submit.ContextUrl is null && string.IsNullOrWhiteSpace(submit.ContextDigest) && string.IsNullOrWhiteSpace(submit.ContextDirectory))
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
        RequireItems(submit.Platforms, "platforms");
        foreach (var platform in submit.Platforms)
        {
            if (Oci.Platform.TryParse(platform) is null)
            {
                throw new InvalidSubmissionException($"\"platforms\" has '{platform}', which is not a platform: write os/arch[/variant], e.g. linux/arm64.");
            }
        }

        if (submit.Options is { } options)
        {
            ValidateOptions(options);
        }
    }

    /// <summary>The build-wide RUN settings and named contexts, as <c>farm build</c> checks them, for any other submitter.</summary>
    private static void ValidateOptions(SubmitBuildOptions options)
    {
        if (options.Network is not (null or "default" or "none" or "host"))
        {
            throw new InvalidSubmissionException($"\"options.network\" is '{options.Network}': use default, none or host.");
        }

        RequireItems(options.ExtraHosts, "options.extraHosts");
        foreach (var entry in options.ExtraHosts)
        {
            var colon = entry.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !System.Net.IPAddress.TryParse(entry[(colon + 1)..], out _) || entry[..colon].Any(c => char.IsWhiteSpace(c) || c == '#'))
            {
                throw new InvalidSubmissionException($"\"options.extraHosts\" holds '{entry}', which is not HOST:IP.");
            }
        }

        if (options.ShmSizeBytes is <= 0)
        {
            throw new InvalidSubmissionException("\"options.shmSizeBytes\" must be a positive number of bytes.");
        }

        if (options.Ulimits is null || options.Ulimits.Any(u => u is null || !UlimitNames.Contains(u.Name) || u.Soft < -1 || u.Hard < -1 || (u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard))))
        {
            throw new InvalidSubmissionException($"\"options.ulimits\" holds a limit that is not {{name, soft, hard}} with a name of {string.Join(", ", UlimitNames)} and soft no higher than hard (-1: unlimited).");
        }

        if (options.NamedContexts is null || options.NamedContexts.Any(c => c is null || string.IsNullOrWhiteSpace(c.Name) || (c.Image is null ? 0 : 1) + (c.ContextDigest is null && c.Directory is null ? 0 : 1) + (c.StoredImage is null ? 0 : 1) != 1))
        {
            throw new InvalidSubmissionException("\"options.namedContexts\" holds a context without a name, or with none or more than one of image, contextDigest, directory and storedImage.");
        }

        foreach (var context in options.NamedContexts)
        {
            CheckDigest($"options.namedContexts[{context.Name}].storedImage", context.StoredImage);
            CheckDigest($"options.namedContexts[{context.Name}].contextDigest", context.ContextDigest);
            CheckDigest($"options.namedContexts[{context.Name}].contextIndexDigest", context.ContextIndexDigest);
        }

        // The cache options are checked as the CLI checks them (FARM2260, FARM2261), so a queued or posted build with a
        // bad one is refused before it runs rather than failing after its steps.
        RequireItems(options.CacheFrom, "options.cacheFrom");
        RequireItems(options.CacheTo, "options.cacheTo");
        foreach (var value in options.CacheFrom)
        {
            Farm.Oci.Images.CacheSpec.ParseImport(value);
        }

        foreach (var value in options.CacheTo)
        {
            Farm.Oci.Images.CacheSpec.ParseExport(value);
        }
    }

    private static readonly HashSet<string> UlimitNames = new(StringComparer.Ordinal)
    {
        "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as",
    };

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
