namespace Farm.Containers;

/// <summary>How the process of <c>farm run</c> or <c>farm exec</c> runs: the flags both share.</summary>
public abstract record ContainerProcessOptions
{
    /// <summary><c>-e K=V</c> (or <c>-e K</c>, taking the value from the caller's environment).</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary><c>-w</c>; null keeps the image's or container's.</summary>
    public string? WorkingDir { get; init; }

    /// <summary><c>-u</c>; null keeps the image's or container's.</summary>
    public string? User { get; init; }

    /// <summary><c>-t</c>.</summary>
    public bool Tty { get; init; }

    /// <summary><c>-i</c>.</summary>
    public bool Interactive { get; init; }
}

/// <summary>What <c>farm run</c> asks for.</summary>
public sealed record ContainerCreateOptions : ContainerProcessOptions
{
    /// <summary>The image as the user named it.</summary>
    public required string Image { get; init; }

    /// <summary>COMMAND [ARG...] replacing the image's CMD; empty keeps it.</summary>
    public IReadOnlyList<string> Command { get; init; } = [];

    /// <summary><c>--name</c>; null generates one.</summary>
    public string? Name { get; init; }

    /// <summary><c>--rm</c>.</summary>
    public bool AutoRemove { get; init; }

    /// <summary><c>--network</c>.</summary>
    public ContainerNetwork Network { get; init; }

    /// <summary><c>-p</c> values, parsed.</summary>
    public IReadOnlyList<PortMapping> Ports { get; init; } = [];

    /// <summary><c>-P</c>.</summary>
    public bool PublishAll { get; init; }

    /// <summary><c>--entrypoint</c>: replaces the image's ENTRYPOINT (and drops its CMD, as docker); an empty list clears it; null keeps it.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary><c>-v</c> and <c>--mount</c> values, parsed.</summary>
    public IReadOnlyList<ContainerMount> Mounts { get; init; } = [];
}

/// <summary>What <c>farm exec</c> asks for.</summary>
public sealed record ContainerExecOptions : ContainerProcessOptions
{
    /// <summary>The command and its arguments.</summary>
    public required IReadOnlyList<string> Args { get; init; }
}

/// <summary>What <c>farm commit</c> asks for.</summary>
public sealed record ContainerCommitOptions
{
    /// <summary><c>REPOSITORY[:TAG]</c>; null leaves the image unnamed.</summary>
    public string? Name { get; init; }

    /// <summary><c>-a</c>: the config's <c>author</c> and the history entry's.</summary>
    public string? Author { get; init; }

    /// <summary><c>-m</c>: the history entry's comment.</summary>
    public string? Message { get; init; }

    /// <summary><c>-c</c> Dockerfile instructions applied to the config.</summary>
    public IReadOnlyList<string> Changes { get; init; } = [];

    /// <summary><c>-p</c>: pause the container while its changes are read (the default).</summary>
    public bool Pause { get; init; } = true;
}
