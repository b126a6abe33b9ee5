using System.Collections.Concurrent;
using Farm.Contracts;

namespace Farm.Coordinator.Auth;

/// <summary>
/// The secrets and SSH agents passed with builds (<c>farm build --secret</c>, <c>--ssh</c>), in this coordinator's memory
/// only, from the submission until the build's run here ends (docs/architecture.md, "Build secrets"). The submission,
/// and so the grain state and Redis, names only their ids (<see cref="SubmitBuild.SecretIds"/>); a worker gets the
/// values of its job's build just before the step runs, from here (<see cref="Values"/>).
/// </summary>
public sealed class BuildSecrets
{
    /// <summary>Values never outlive this, even when their build never ran here.</summary>
    private static readonly TimeSpan MaxHold = TimeSpan.FromHours(24);

    private readonly ConcurrentDictionary<Guid, Held> _held = new();
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
    public void Release(Guid buildId) => _held.TryRemove(buildId, out _);

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
}
