using Farm.Contracts;

namespace Farm.Containers;

/// <summary>FARM3100: a name or id prefix matches no container.</summary>
public sealed class NoSuchContainerException(string nameOrId)
    : FarmException(FarmErrorCodes.NoSuchContainer, $"no such container: {nameOrId}. List the containers with farm ps -a.")
{
    /// <summary>The name or id prefix as given.</summary>
    public string NameOrId { get; } = nameOrId;
}

/// <summary>FARM3101: an id prefix matches more than one container.</summary>
public sealed class AmbiguousContainerException(string prefix, IReadOnlyList<string> matches)
    : FarmException(FarmErrorCodes.AmbiguousContainer, $"the id prefix '{prefix}' matches {matches.Count} containers ({string.Join(", ", matches)}); give more characters of the id or the name.")
{
    /// <summary>The prefix as given.</summary>
    public string Prefix { get; } = prefix;
}

/// <summary>FARM3102: <c>--name</c> is taken by another container, or is not a valid name.</summary>
public sealed class ContainerNameException(string name, string reason)
    : FarmException(FarmErrorCodes.ContainerName, $"the container name '{name}' {reason}.")
{
    /// <summary>The name as given.</summary>
    public string Name { get; } = name;
}

/// <summary>FARM3103: the container is not in a state the operation needs (e.g. exec into a stopped one).</summary>
public sealed class ContainerStateException(string container, string message)
    : FarmException(FarmErrorCodes.ContainerState, $"container {container}: {message}")
{
    /// <summary>The container's name.</summary>
    public string Container { get; } = container;
}

/// <summary>FARM3104: a <c>-p</c> value is not <c>[IP:][HOST:]CONTAINER[/tcp|/udp]</c>.</summary>
public sealed class InvalidPortMappingException(string spec, string reason)
    : FarmException(FarmErrorCodes.InvalidPortMapping, $"invalid port mapping '{spec}': {reason}. Write [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], e.g. -p 8080:80.")
{
    /// <summary>The value as given.</summary>
    public string Spec { get; } = spec;
}

/// <summary>FARM3105: the container's private network (namespace, slirp4netns, port forwards) could not be set up.</summary>
public sealed class ContainerNetworkException(string message, Exception? innerException = null)
    : FarmException(FarmErrorCodes.ContainerNetwork, message, innerException);

/// <summary>FARM3106: the container could not be created, started, stopped or removed (runc, mounts, state files).</summary>
public sealed class ContainerRuntimeException(string message, Exception? innerException = null)
    : FarmException(FarmErrorCodes.ContainerRuntime, message, innerException);

/// <summary>
/// FARM3108: runc could not start the container's process (command not found, not executable, bad working
/// directory). <see cref="ExitCode"/> follows docker: 127 for a missing command, 126 for one that cannot run, else 125.
/// </summary>
public sealed class ContainerStartException(string container, IReadOnlyList<string> args, string runcError)
    : FarmException(FarmErrorCodes.ContainerStart, $"container {container} could not run '{string.Join(' ', args)}': {runcError}. Check the command and the image (farm inspect), or give another command after the image name.")
{
    /// <summary>The exit code farm reports.</summary>
    public int ExitCode { get; } =
        runcError.Contains("not found", StringComparison.Ordinal) || runcError.Contains("no such file", StringComparison.OrdinalIgnoreCase) ? 127
        : runcError.Contains("permission denied", StringComparison.OrdinalIgnoreCase) ? 126
        : 125;
}

/// <summary>FARM5100: a <c>farm run -v</c> or <c>--mount</c> value is malformed, names a volume, or its bind source is unusable.</summary>
public sealed class InvalidMountException(string spec, string reason)
    : FarmException(FarmErrorCodes.InvalidMount, $"invalid mount '{spec}': {reason}. Write -v /host/dir:/container/dir[:ro], --mount type=bind,source=/host/dir,target=/container/dir[,readonly] or --mount type=tmpfs,target=/dir.")
{
    /// <summary>The value as given.</summary>
    public string Spec { get; } = spec;
}
