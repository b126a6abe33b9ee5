using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Instructions;

// Every string here is RAW: quotes, escape characters and $variables are exactly as written.
// Variable expansion (ShellWordExpander) runs later, with the ARG/ENV scope of the stage.

/// <summary>A typed Dockerfile instruction; <see cref="Node"/> keeps its source, flags and location.</summary>
public abstract record Instruction
{
    public required InstructionNode Node { get; init; }

    public SourceLocation Location => Node.Location;
}

/// <summary>How a command is given: shell form (run through the SHELL) or exec form (a JSON array).</summary>
public abstract record CommandForm;

/// <summary>Shell form: <c>RUN apt-get update</c>; the whole text goes to the shell as one string.</summary>
public sealed record ShellForm(string CommandRaw) : CommandForm;

/// <summary>Exec form: <c>RUN ["apt-get", "update"]</c>; JSON escapes are decoded, nothing else.</summary>
public sealed record ExecForm(IReadOnlyList<string> ArgumentsRaw) : CommandForm;

/// <summary>A <c>key=value</c> pair of ENV or LABEL; the value keeps its quotes until expansion.</summary>
public sealed record KeyValuePairRaw(string Key, string ValueRaw);

/// <summary>FROM [--platform=…] image [AS name]. https://docs.docker.com/reference/dockerfile/#from</summary>
public sealed record FromInstruction : Instruction
{
    public required string ImageRaw { get; init; }

    /// <summary>The stage name, lower-cased as BuildKit does; null without AS.</summary>
    public string? StageName { get; init; }

    public string? PlatformRaw { get; init; }
}

/// <summary>RUN. https://docs.docker.com/reference/dockerfile/#run</summary>
public sealed record RunInstruction : Instruction
{
    public required CommandForm Command { get; init; }

    /// <summary>Heredoc bodies the command refers to (<c>RUN &lt;&lt;EOF</c>).</summary>
    public IReadOnlyList<Heredoc> Heredocs { get; init; } = [];

    /// <summary>Each <c>--mount</c> value as written, e.g. <c>type=cache,target=/root/.cache</c>.</summary>
    public IReadOnlyList<string> MountsRaw { get; init; } = [];

    /// <summary><c>default</c>, <c>none</c> or <c>host</c>; null when not given.</summary>
    public string? Network { get; init; }

    /// <summary><c>sandbox</c> or <c>insecure</c>; null when not given.</summary>
    public string? Security { get; init; }

    /// <summary>Each <c>--device</c> value as written (labs syntax).</summary>
    public IReadOnlyList<string> DevicesRaw { get; init; } = [];
}

/// <summary>CMD. https://docs.docker.com/reference/dockerfile/#cmd</summary>
public sealed record CmdInstruction : Instruction
{
    public required CommandForm Command { get; init; }
}

/// <summary>ENTRYPOINT. https://docs.docker.com/reference/dockerfile/#entrypoint</summary>
public sealed record EntrypointInstruction : Instruction
{
    public required CommandForm Command { get; init; }
}

/// <summary>SHELL ["executable", "parameters"], JSON form only. https://docs.docker.com/reference/dockerfile/#shell</summary>
public sealed record ShellInstruction : Instruction
{
    public required IReadOnlyList<string> ShellRaw { get; init; }
}

/// <summary>ENV, both forms (<c>ENV k v</c> and <c>ENV k=v …</c>). https://docs.docker.com/reference/dockerfile/#env</summary>
public sealed record EnvInstruction : Instruction
{
    public required IReadOnlyList<KeyValuePairRaw> Pairs { get; init; }
}

/// <summary>LABEL. https://docs.docker.com/reference/dockerfile/#label</summary>
public sealed record LabelInstruction : Instruction
{
    public required IReadOnlyList<KeyValuePairRaw> Pairs { get; init; }
}

/// <summary>One name of an ARG instruction, with its default when given (<c>ARG v=1</c>).</summary>
public sealed record ArgDeclaration(string Name, string? DefaultRaw);

/// <summary>ARG name[=default] …. https://docs.docker.com/reference/dockerfile/#arg</summary>
public sealed record ArgInstruction : Instruction
{
    public required IReadOnlyList<ArgDeclaration> Args { get; init; }
}

/// <summary>EXPOSE port[/protocol] …. https://docs.docker.com/reference/dockerfile/#expose</summary>
public sealed record ExposeInstruction : Instruction
{
    public required IReadOnlyList<string> PortsRaw { get; init; }
}

/// <summary>VOLUME. https://docs.docker.com/reference/dockerfile/#volume</summary>
public sealed record VolumeInstruction : Instruction
{
    public required IReadOnlyList<string> PathsRaw { get; init; }
}

/// <summary>USER user[:group]. https://docs.docker.com/reference/dockerfile/#user</summary>
public sealed record UserInstruction : Instruction
{
    public required string UserRaw { get; init; }
}

/// <summary>WORKDIR. https://docs.docker.com/reference/dockerfile/#workdir</summary>
public sealed record WorkdirInstruction : Instruction
{
    public required string PathRaw { get; init; }
}

/// <summary>STOPSIGNAL. https://docs.docker.com/reference/dockerfile/#stopsignal</summary>
public sealed record StopSignalInstruction : Instruction
{
    public required string SignalRaw { get; init; }
}

/// <summary>MAINTAINER (deprecated). https://docs.docker.com/reference/dockerfile/#maintainer-deprecated</summary>
public sealed record MaintainerInstruction : Instruction
{
    public required string MaintainerRaw { get; init; }
}

/// <summary>ONBUILD: an instruction stored in the image and run when it is used as a base.
/// https://docs.docker.com/reference/dockerfile/#onbuild</summary>
public sealed record OnbuildInstruction : Instruction
{
    public required Instruction Trigger { get; init; }

    /// <summary>The trigger as written after ONBUILD; this is what goes into the image config.</summary>
    public required string TriggerRaw { get; init; }
}

/// <summary>HEALTHCHECK NONE or HEALTHCHECK [options] CMD command.
/// https://docs.docker.com/reference/dockerfile/#healthcheck</summary>
public sealed record HealthcheckInstruction : Instruction
{
    /// <summary>True for HEALTHCHECK NONE (disables a health check inherited from the base image).</summary>
    public required bool IsNone { get; init; }

    /// <summary>The probe; null for NONE.</summary>
    public CommandForm? Command { get; init; }

    /// <summary>Null when not given or zero: the runtime default applies.</summary>
    public TimeSpan? Interval { get; init; }

    public TimeSpan? Timeout { get; init; }

    public TimeSpan? StartPeriod { get; init; }

    public TimeSpan? StartInterval { get; init; }

    public int? Retries { get; init; }
}

/// <summary>What COPY and ADD share. https://docs.docker.com/reference/dockerfile/#copy</summary>
public abstract record FileTransferInstruction : Instruction
{
    /// <summary>Source paths or URLs, in order; heredoc sources are in <see cref="SourceContents"/>.</summary>
    public required IReadOnlyList<string> SourcesRaw { get; init; }

    /// <summary>Inline files: <c>COPY &lt;&lt;EOF /dest</c>; the heredoc name is the file name.</summary>
    public IReadOnlyList<Heredoc> SourceContents { get; init; } = [];

    public required string DestinationRaw { get; init; }

    public string? ChownRaw { get; init; }

    public string? ChmodRaw { get; init; }

    public bool Link { get; init; }

    public IReadOnlyList<string> ExcludeRaw { get; init; } = [];

    /// <summary>True when written as a JSON array (allows paths with spaces).</summary>
    public bool IsJsonForm { get; init; }
}

/// <summary>COPY. https://docs.docker.com/reference/dockerfile/#copy</summary>
public sealed record CopyInstruction : FileTransferInstruction
{
    /// <summary>Stage name, stage index or image for <c>--from</c>; null copies from the build context.</summary>
    public string? FromRaw { get; init; }

    public bool Parents { get; init; }
}

/// <summary>ADD. https://docs.docker.com/reference/dockerfile/#add</summary>
public sealed record AddInstruction : FileTransferInstruction
{
    /// <summary>Expected digest of a remote source (<c>--checksum=sha256:…</c>).</summary>
    public string? ChecksumRaw { get; init; }

    public bool KeepGitDir { get; init; }

    /// <summary>Null when not given: archives from the context are unpacked, remote ones are not.</summary>
    public bool? Unpack { get; init; }
}
