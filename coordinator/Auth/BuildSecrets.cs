using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;

namespace Farm.Coordinator.Auth;

/// <summary>
/// The secrets and SSH agents passed with builds (<c>farm build --secret</c>, <c>--ssh</c>), in this coordinator's memory
/// only, from the submission until the build's run here ends (docs/architecture.md, "Build secrets"). The submission,
/// and so the grain state and Redis, names only their ids (<see cref="SubmitBuild.SecretIds"/>); a worker gets the
/// values of its job's build just before the step runs, from here: in the coordinator's process directly
/// (<see cref="Values"/>), from a worker process of its own with a job credential (<see cref="Grant"/>,
/// <see cref="Redeem"/>).
/// </summary>
/// <remarks>
/// A job credential is 256 random bits, minted for one step of one build and the secret ids that step mounts; this
/// class keeps only its SHA-256, so not even a dump of the coordinator's memory structures gives it back, and forgets
/// it when the step's job ends (<see cref="JobSecretsLease.Dispose"/>) or the build's secrets are released. A worker
/// that presents it for another build, or after the job, gets the same refusal as for a made-up one.
/// </remarks>
public sealed class BuildSecrets
{
    /// <summary>Values never outlive this, even when their build never ran here.</summary>
    private static readonly TimeSpan MaxHold = TimeSpan.FromHours(24);

    private readonly ConcurrentDictionary<Guid, Held> _held = new();
    private readonly ConcurrentDictionary<string, JobGrant> _grants = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    /// <param name="time">The clock of the 24-hour limit.</param>
    public BuildSecrets(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>How many builds' secrets this coordinator holds now.</summary>
    public int HeldCount => _held.Count;

    /// <summary>Keeps what was passed with build <paramref name="buildId"/> until <see cref="Release"/>; false when it holds some already.</summary>
    public bool Hold(Guid buildId, BuildSecretValues values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var now = _time.GetUtcNow();
        foreach (var (id, held) in _held)
        {
            if (now - held.Since > MaxHold)
            {
                _held.TryRemove(id, out _);
            }
        }

        return _held.TryAdd(buildId, new Held(values, now));
    }

    /// <summary>Forgets what was passed with build <paramref name="buildId"/>.</summary>
    public void Release(Guid buildId)
    {
        _held.TryRemove(buildId, out _);
        foreach (var (hash, grant) in _grants)
        {
            if (grant.BuildId == buildId)
            {
                _grants.TryRemove(hash, out _);
            }
        }
    }

    /// <summary>How many job credentials are good now.</summary>
    public int GrantCount => _grants.Count;

    /// <summary>
    /// A credential for one job of build <paramref name="buildId"/> to fetch the secrets <paramref name="ids"/> (those
    /// this build holds; the others are left out) at <paramref name="url"/>, good until the lease is disposed or the
    /// build's secrets are released. Null when the build holds none of them.
    /// </summary>
    public JobSecretsLease? Grant(Guid buildId, IEnumerable<string> ids, string url)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        ArgumentNullException.ThrowIfNull(ids);
        var values = Values(buildId);
        var held = ids.Where(values.Secrets.ContainsKey).Distinct(StringComparer.Ordinal).ToArray();
        if (held.Length == 0)
        {
            return null;
        }

        var credential = Base64Url(RandomNumberGenerator.GetBytes(32));
        var hash = Hash(credential);
        _grants[hash] = new JobGrant(buildId, held);
        return new JobSecretsLease(new JobSecretsGrant { Url = url, Credential = credential }, () => _grants.TryRemove(hash, out _));
    }

    /// <summary>
    /// The secrets <paramref name="credential"/> was granted for, of build <paramref name="buildId"/>: only the ids of
    /// its grant.
    /// </summary>
    /// <exception cref="JobCredentialRefusedException">
    /// The credential is unknown, its job ended, it was minted for another build, or the build's secrets are gone
    /// (FARM4340); the exception says which build was asked, never why, so a caller learns nothing of other builds.
    /// </exception>
    public BuildSecretValues Redeem(string credential, Guid buildId)
    {
        ArgumentNullException.ThrowIfNull(credential);
        if (credential.Length is 0 or > 128
            || !_grants.TryGetValue(Hash(credential), out var grant)
            || grant.BuildId != buildId
            || !_held.TryGetValue(buildId, out var held))
        {
            throw new JobCredentialRefusedException(buildId);
        }

        return new BuildSecretValues
        {
            Secrets = grant.Ids.Where(held.Values.Secrets.ContainsKey).ToDictionary(id => id, id => held.Values.Secrets[id], StringComparer.Ordinal),
            SshAgents = new Dictionary<string, string>(StringComparer.Ordinal),
        };
    }

    private static string Hash(string credential) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(credential)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>What build <paramref name="buildId"/> holds here; <see cref="BuildSecretValues.None"/> when nothing.</summary>
    public BuildSecretValues Values(Guid buildId) => _held.TryGetValue(buildId, out var held) ? held.Values : BuildSecretValues.None;

    /// <summary>Checks, when a run starts, that this coordinator holds every secret and agent the submission names.</summary>
    /// <exception cref="BuildSecretsLostException">They were passed to another coordinator (FARM4310).</exception>
    public void Check(SubmitBuild submission)
    {
        ArgumentNullException.ThrowIfNull(submission);
        var values = Values(submission.BuildId);
        var lost = submission.SecretIds.Where(id => !values.Secrets.ContainsKey(id))
            .Concat(submission.SshIds.Where(id => !values.SshAgents.ContainsKey(id)))
            .ToList();
        if (lost.Count > 0)
        {
            throw new BuildSecretsLostException(submission.BuildId, lost);
        }
    }

    private sealed record Held(BuildSecretValues Values, DateTimeOffset Since);

    private sealed record JobGrant(Guid BuildId, IReadOnlyList<string> Ids);
}

/// <summary>A job credential of <see cref="BuildSecrets.Grant"/>: refused from the moment it is disposed.</summary>
public sealed class JobSecretsLease : IDisposable
{
    private readonly Action _revoke;
    private int _disposed;

    internal JobSecretsLease(JobSecretsGrant grant, Action revoke)
    {
        Grant = grant;
        _revoke = revoke;
    }

    /// <summary>What the job carries: where to fetch, and the credential.</summary>
    public JobSecretsGrant Grant { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _revoke();
        }
    }

    public override string ToString() => "job secrets credential (redacted)";
}

/// <summary>
/// The job credentials of one build's run on this coordinator: a lease per step that mounts a secret the build holds
/// (<see cref="For"/>), for the job's worker to fetch the values at <c>URL/jobs/secrets/BUILD</c>.
/// </summary>
/// <param name="secrets">Where the values are held.</param>
/// <param name="buildId">The build.</param>
/// <param name="apiUrl">This coordinator's API as workers reach it (<see cref="JobSecretsEndpoint"/>).</param>
public sealed class BuildJobSecrets(BuildSecrets secrets, Guid buildId, string apiUrl)
{
    /// <summary>A lease for <paramref name="step"/>'s job; null when it mounts no secret the build holds.</summary>
    public JobSecretsLease? For(LayerStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var ids = step.Run?.Mounts.Where(m => m.Type == "secret" && m.Id is not null).Select(m => m.Id!).ToList();
        return ids is { Count: > 0 } ? secrets.Grant(buildId, ids, JobSecretsEndpoint.PathFor(apiUrl, buildId)) : null;
    }
}
