namespace Farm.Contracts;

/// <summary>
/// The entitlements a build may ask for (<see cref="SubmitBuild.Entitlements"/>), named as BuildKit's <c>--allow</c>
/// values: https://docs.docker.com/reference/cli/docker/buildx/build/#allow.
/// </summary>
public static class Entitlements
{
    /// <summary><c>RUN --network=host</c>: the step shares the worker's network namespace.</summary>
    public const string NetworkHost = "network.host";
}
