using Farm.Contracts;

namespace Farm.Containers.Sandbox;

/// <summary>FARM3001: a USER names a user or group the image does not define.</summary>
public sealed class UnknownUserException : FarmException
{
    public UnknownUserException(string userSpec, string message)
        : base(FarmErrorCodes.UnknownUser, message)
    {
        UserSpec = userSpec;
    }

    /// <summary>The USER value as written, e.g. <c>app:staff</c>.</summary>
    public string UserSpec { get; }
}

/// <summary>FARM3002: a RUN command exited with a non-zero status.</summary>
public sealed class RunFailedException : FarmException, IStepFailure
{
    public RunFailedException(int exitCode, IReadOnlyList<string> args, IReadOnlyList<OutputLine> outputTail)
        : base(FarmErrorCodes.RunFailed, Describe(exitCode, args, outputTail))
    {
        ExitCode = exitCode;
        OutputTail = outputTail;
    }

    /// <summary>The process's exit status (128 + n when killed by signal n).</summary>
    public int ExitCode { get; }

    /// <summary>The last lines the command wrote, stdout and stderr interleaved in arrival order.</summary>
    public IReadOnlyList<OutputLine> OutputTail { get; }

    int? IStepFailure.ExitCode => ExitCode;

    IReadOnlyList<string> IStepFailure.OutputTail => [.. OutputTail.Select(l => l.Text)];

    private static string Describe(int exitCode, IReadOnlyList<string> args, IReadOnlyList<OutputLine> tail)
    {
        var command = string.Join(' ', args);
        var text = $"the command '{command}' exited with code {exitCode}; fix the command or the files it needs and rebuild.";
        if (tail.Count > 0)
        {
            text += $" Last {tail.Count} lines of output:{Environment.NewLine}" + string.Join(Environment.NewLine, tail.Select(l => l.Text));
        }

        return text;
    }
}

/// <summary>
/// FARM3003: running a process under runc failed for a reason of the machine, not of the command: runc is missing,
/// the bundle is bad, the kernel refused a namespace or mount, or the process's output could not be delivered.
/// </summary>
public sealed class SandboxException : FarmException
{
    public SandboxException(string message, Exception? innerException = null)
        : base(FarmErrorCodes.Sandbox, message, innerException)
    {
    }
}

/// <summary>FARM3004: an overlayfs snapshot could not be mounted or removed.</summary>
public sealed class SnapshotException : FarmException
{
    public SnapshotException(string message, Exception? innerException = null)
        : base(FarmErrorCodes.Snapshot, message, innerException)
    {
    }
}

/// <summary>FARM3005: a path inside the image escapes or cannot be used (e.g. WORKDIR is a file).</summary>
public sealed class RootfsPathException : FarmException
{
    public RootfsPathException(string message, Exception? innerException = null)
        : base(FarmErrorCodes.RootfsPath, message, innerException)
    {
    }
}
