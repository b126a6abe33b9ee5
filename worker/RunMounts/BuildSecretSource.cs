using System.Net;
using System.Net.Http.Headers;
using Farm.Contracts;

namespace Farm.Worker.RunMounts;

/// <summary>
/// Where a worker gets the secrets and SSH agents of a job's build, when a step mounts one and not before: from the
/// coordinator that holds them in memory (docs/architecture.md, "Build secrets"). Nothing a worker receives from the
/// queue carries a value.
/// </summary>
public interface IBuildSecretSource
{
    /// <summary>The secrets and agents passed with build <paramref name="buildId"/>; <see cref="BuildSecretValues.None"/> when none.</summary>
    /// <exception cref="BuildSecretUnavailableException">The source cannot be asked (FARM3121).</exception>
    Task<BuildSecretValues> GetAsync(Guid buildId, CancellationToken cancellationToken);
}

/// <summary>A worker that can reach no build's secrets: a step with a required secret fails with FARM3121.</summary>
public sealed class NoBuildSecrets : IBuildSecretSource
{
    /// <summary>The one instance.</summary>
    public static NoBuildSecrets Instance { get; } = new();

    public Task<BuildSecretValues> GetAsync(Guid buildId, CancellationToken cancellationToken) => Task.FromResult(BuildSecretValues.None);
}

/// <summary>A source answered by a function of the build id: the local farm's, whose coordinator runs in the same process.</summary>
/// <param name="values">The values held for a build.</param>
public sealed class InProcessBuildSecrets(Func<Guid, BuildSecretValues> values) : IBuildSecretSource
{
    public Task<BuildSecretValues> GetAsync(Guid buildId, CancellationToken cancellationToken) => Task.FromResult(values(buildId));
}

/// <summary>
/// The secrets of one job's build, fetched from the coordinator that accepted the build with the job's credential
/// (<see cref="JobSecretsGrant"/>): a shared farm's worker, in a process of its own, asks when the step starts and keeps
/// the answer only for the step. The credential goes in the <c>Authorization</c> header, never in the URL; the answer
/// is read into memory and never logged.
/// </summary>
/// <param name="grant">The job's grant.</param>
/// <param name="http">The worker's client for coordinators (its TLS trust is <c>Farm:Worker:CoordinatorCaPath</c>).</param>
public sealed class CoordinatorBuildSecrets(JobSecretsGrant grant, HttpClient http) : IBuildSecretSource
{
    /// <summary>How long one fetch may take: the coordinator answers from memory.</summary>
    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(60);

    /// <exception cref="BuildSecretUnavailableException">The coordinator could not be reached, or refused the credential (FARM3121).</exception>
    public async Task<BuildSecretValues> GetAsync(Guid buildId, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(FetchTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, grant.Url);
        request.Headers.Authorization = new AuthenticationHeaderValue(JobSecretsGrant.Scheme, grant.Credential);
        string body;
        HttpStatusCode status;
        try
        {
            using var response = await http.SendAsync(request, timeout.Token).ConfigureAwait(false);
            status = response.StatusCode;
            body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new BuildSecretUnavailableException($"the step mounts secrets of build {buildId}, and the coordinator that holds them ({Origin()}) did not answer: {e.Message}. Check that workers reach the coordinators' API (Farm:Coordinator:WorkerApiUrl) and trust its certificate (Farm:Worker:CoordinatorCaPath).", e);
        }

        if (status != HttpStatusCode.OK)
        {
            // The error body is the API's {code, error}: it never holds a value.
            throw new BuildSecretUnavailableException($"the coordinator {Origin()} refused this job's request for the secrets of build {buildId}: HTTP {(int)status}: {Shorten(body)}");
        }

        return BuildSecretsHeader.TryDecode(body, out var problem)
            ?? throw new BuildSecretUnavailableException($"the coordinator {Origin()} answered the request for the secrets of build {buildId} with something unreadable: {problem}");
    }

    private string Origin() => Uri.TryCreate(grant.Url, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Authority) : "(a malformed address)";

    private static string Shorten(string text) => text.Length <= 400 ? text : text[..400] + "...";
}

/// <summary>FARM3120: a <c>RUN --mount</c> could not be set up (a bind source missing in what it binds, a cache or tmpfs that could not be made).</summary>
public sealed class RunMountException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.RunMountFailed, message, inner);

/// <summary>FARM3121: a step mounts a required secret or SSH agent the worker could not get for its build.</summary>
public sealed class BuildSecretUnavailableException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.BuildSecretUnavailable, message, inner);
