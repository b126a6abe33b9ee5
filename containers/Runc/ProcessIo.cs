using System.Threading.Channels;
using Farm.Containers.Sandbox;

namespace Farm.Containers.Runc;

/// <summary>
/// The standard streams of a process <see cref="RuncExecutor"/> runs, as BuildKit's <c>executor.ProcessInfo</c>: what
/// it reads, where its output goes, and whether it has a terminal.
/// </summary>
/// <remarks>
/// The executor reads the process's output until the process and everything holding its streams ended, writing each
/// chunk to <see cref="Stdout"/> or <see cref="Stderr"/> and flushing it; it never disposes these streams. A stream
/// that throws stops the process (the error is a <see cref="SandboxException"/> with the stream's exception inside).
/// </remarks>
public sealed record ProcessIo
{
    /// <summary>No input, output discarded, no terminal.</summary>
    public static ProcessIo None { get; } = new();

    /// <summary>Copied to the process until it ends; null gives the process end-of-file at once (as <c>&lt;/dev/null</c>).</summary>
    public Stream? Stdin { get; init; }

    /// <summary>The process's standard output; with a <see cref="Terminal"/>, everything it writes to the terminal. Null discards it.</summary>
    public Stream? Stdout { get; init; }

    /// <summary>The process's standard error; unused with a <see cref="Terminal"/>, which carries both streams. Null discards it.</summary>
    public Stream? Stderr { get; init; }

    /// <summary>
    /// Give the process a terminal (the runtime spec's <c>process.terminal</c>, <c>runc exec --tty</c>): the executor
    /// makes a pseudo-terminal whose slave is runc's standard streams, and runc gives the container a terminal of its own
    /// behind it.
    /// </summary>
    public bool Terminal { get; init; }

    /// <summary>
    /// The terminal's size (null leaves the kernel's 0x0). runc copies it to the container's terminal just after the
    /// process started, so a process that asks for its size at once may still see 0x0, as with <c>runc run</c> itself.
    /// </summary>
    public TerminalSize? InitialSize { get; init; }

    /// <summary>New terminal sizes while the process runs (a window resized); read until the process ends.</summary>
    public ChannelReader<TerminalSize>? Resize { get; init; }
}

/// <summary>A terminal's size in character cells (<c>struct winsize</c>).</summary>
/// <param name="Rows">Lines.</param>
/// <param name="Columns">Columns.</param>
public readonly record struct TerminalSize(ushort Rows, ushort Columns);

/// <summary>How a process <see cref="RuncExecutor"/> ran has ended.</summary>
/// <param name="ExitCode">runc's exit code: the process's (128 + n when killed by signal n), or runc's own when it failed.</param>
/// <param name="StartError">
/// Why runc could not start the process (the last error of its log, e.g. <c>exec: "x": executable file not found in
/// $PATH</c>); null when the process ran.
/// </param>
public sealed record ProcessExit(int ExitCode, string? StartError);

/// <summary>
/// A process to start in a running container with <see cref="RuncExecutor.ExecAsync"/>; what is not given is the
/// container's own (runc exec reads the rest from the container's runtime spec).
/// </summary>
public sealed record ExecProcess
{
    /// <summary>The command and its arguments; <c>Args[0]</c> is looked up in the container's PATH.</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary><c>K=V</c> entries added to the container's environment.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>The working directory; null keeps the container's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>The user and groups; null keeps the container's.</summary>
    public RuntimeUser? User { get; init; }
}
