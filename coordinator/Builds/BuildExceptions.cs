using Farm.Contracts;

namespace Farm.Coordinator.Builds;

/// <summary>FARM4201: a layer step failed; the message names the step, the exit code of a RUN and the tail of its output.</summary>
public sealed class BuildStepFailedException : FarmException
{
    public BuildStepFailedException(string stepId, string display, string location, string failureCode, string failureMessage, int? exitCode, IReadOnlyList<string> outputTail)
        : base(FarmErrorCodes.BuildStepFailed, Describe(stepId, display, location, failureCode, failureMessage, exitCode, outputTail))
    {
        StepId = stepId;
        ExitCode = exitCode;
        FailureCode = failureCode;
        OutputTail = outputTail;
    }

    public string StepId { get; }

    /// <summary>The RUN's exit code, when it ran and failed.</summary>
    public int? ExitCode { get; }

    /// <summary>The code the worker (or the grain) reported.</summary>
    public string FailureCode { get; }

    public IReadOnlyList<string> OutputTail { get; }

    private static string Describe(string stepId, string display, string location, string code, string message, int? exitCode, IReadOnlyList<string> tail)
    {
        var output = tail.Count == 0 ? string.Empty : $"{Environment.NewLine}Last output:{Environment.NewLine}{string.Join(Environment.NewLine, tail)}";
        if (exitCode is { } e)
        {
            // The worker's message says the same (the command, its code, its output): name the step and show the output once.
            return $"Step {stepId} ({location}) `{display}` exited with code {e} ({code}). Fix the instruction (or what it runs) and build again.{output}";
        }

        // The worker's message starts with its own code; the output tail is shown once, below.
        var reason = message.StartsWith(code + ": ", StringComparison.Ordinal) ? message[(code.Length + 2)..] : message;
        if (tail.Count > 0 && reason.IndexOf(Environment.NewLine, StringComparison.Ordinal) is var newline and >= 0)
        {
            reason = reason[..newline];
        }

        return $"Step {stepId} ({location}) `{display}` failed ({code}): {reason.TrimEnd('.', ' ')}. Fix the instruction (or what it runs) and build again.{output}";
    }
}

/// <summary>
/// FARM4321: a step that must run is for a platform no live worker runs. Refused before its job is sent: it would wait
/// in its platform's queue until a worker for it started, or the job deadline ended it.
/// </summary>
public sealed class NoWorkerForPlatformException(string stepId, string platform, IEnumerable<string> available)
    : FarmException(FarmErrorCodes.NoWorkerForPlatform, $"Step {stepId} is for {platform}, which none of the farm's workers runs (they run {string.Join(", ", available)}). Start a worker on a {platform} machine, or install qemu-user-static on one (infra/install.sh registers it with binfmt_misc), or build for the platforms the farm has.")
{
    public string Platform { get; } = platform;
}

/// <summary>FARM4202: a base image (or a <c>COPY --from</c> image) could not be pinned or copied into the cache store.</summary>
public sealed class BaseImageUnavailableException(string reference, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.BaseImageUnavailable, $"The image '{reference}' could not be resolved: {reason}. Check the name and tag, that the registry answers, and your credentials (docker login).", inner)
{
    public string Reference { get; } = reference;
}

/// <summary>
/// FARM4220: a step needs an entitlement the build did not ask for (<c>--allow</c>), or the build asks for one the farm
/// does not grant. Refused before any job, as BuildKit refuses.
/// </summary>
public sealed class EntitlementNotGrantedException(string message)
    : FarmException(FarmErrorCodes.EntitlementNotGranted, message)
{
    /// <summary>A step of the Dockerfile that needs <paramref name="entitlement"/>, which the build did not ask for.</summary>
    public static EntitlementNotGrantedException NotRequested(string fileName, string location, string feature, string entitlement) =>
        new($"{fileName}:{location}: {feature} needs the {entitlement} entitlement, which this build did not ask for. Build with --allow {entitlement} (on a farm that grants it), or remove the flag to use the step's own network.");

    /// <summary>The build asks for <paramref name="entitlement"/>, which this farm's operator does not grant.</summary>
    public static EntitlementNotGrantedException NotGranted(string entitlement, IReadOnlyCollection<string> granted) =>
        new($"this farm does not grant the {entitlement} entitlement (it grants {(granted.Count == 0 ? "none" : string.Join(", ", granted))}). Build without --allow {entitlement}, or ask the farm's operator to add it to Farm:Builds:Entitlements.");
}

/// <summary>FARM1230: an ADD git source's ref could not be resolved to a commit when the build was planned; no job ran.</summary>
public sealed class GitSourceUnavailableException(string fileName, string location, string source, string reason, Exception? inner = null)
    : FarmException(
        FarmErrorCodes.GitSourceUnavailable,
        $"{fileName}:{location}: ADD {Farm.Dockerfile.Context.GitSource.Redact(source)}: {Farm.Dockerfile.Context.GitSource.Redact(reason)}. Check the URL and the ref; a farm fetches git sources over git://, http(s):// and without credentials (never ssh with its own keys).",
        inner)
{
    /// <summary>The git source as written.</summary>
    public string GitSource { get; } = source;
}

/// <summary>FARM4204: the Dockerfile uses a feature the farm cannot build yet; refused before any job rather than built wrong.</summary>
public sealed class UnsupportedBuildFeatureException(string fileName, string location, string feature)
    : FarmException(FarmErrorCodes.UnsupportedBuildFeature, $"{fileName}:{location}: {feature} is not supported by Farm yet. Remove it from the Dockerfile (or build this image with docker buildx) and build again.")
{
    public string Feature { get; } = feature;
}

/// <summary>FARM4311: a <c>required=true</c> secret or ssh mount names an id the build was not given; refused before any job.</summary>
public sealed class BuildSecretMissingException(string fileName, string location, bool ssh, string id)
    : FarmException(
        FarmErrorCodes.BuildSecretMissing,
        ssh
            ? $"{fileName}:{location}: RUN --mount=type=ssh,id={id},required=true needs the SSH agent '{id}', which this build was not given. Build with --ssh {(id == "default" ? "default" : id + "=PATH")} (the local farm only: start ssh-agent and ssh-add your key first)."
            : $"{fileName}:{location}: RUN --mount=type=secret,id={id},required=true needs the secret '{id}', which this build was not given. Build with --secret id={id},src=FILE (or id={id},env=VARIABLE).")
{
    public string Id { get; } = id;
}
