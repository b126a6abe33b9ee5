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

/// <summary>FARM3120: a <c>RUN --mount</c> could not be set up (a bind source missing in what it binds, a cache or tmpfs that could not be made).</summary>
public sealed class RunMountException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.RunMountFailed, message, inner);

/// <summary>FARM3121: a step mounts a required secret or SSH agent the worker could not get for its build.</summary>
public sealed class BuildSecretUnavailableException(string message, Exception? inner = null)
    : FarmException(FarmErrorCodes.BuildSecretUnavailable, message, inner);
