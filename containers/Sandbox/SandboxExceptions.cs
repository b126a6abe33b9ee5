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

/// <summary>
/// A RUN step that went over one of its <see cref="StepLimits"/>: FARM3020 (memory), FARM3021 (processes) or FARM3022
/// (time). It says nothing about the worker, so it is not retried elsewhere.
/// </summary>
public abstract class StepLimitException : FarmException, IStepFailure
{
    private protected StepLimitException(string code, string message, int? exitCode, IReadOnlyList<OutputLine> outputTail)
        : base(code, message + TailText(outputTail))
    {
        ExitCode = exitCode;
        OutputTail = outputTail;
    }

    /// <summary>The step's exit status when it ended by itself; null when the worker killed it.</summary>
    public int? ExitCode { get; }

    /// <summary>The last lines the command wrote.</summary>
    public IReadOnlyList<OutputLine> OutputTail { get; }

    IReadOnlyList<string> IStepFailure.OutputTail => [.. OutputTail.Select(l => l.Text)];

    private static string TailText(IReadOnlyList<OutputLine> tail) =>
        tail.Count == 0 ? "" : $" Last {tail.Count} lines of output:{Environment.NewLine}" + string.Join(Environment.NewLine, tail.Select(l => l.Text));
}

/// <summary>FARM3020: the kernel killed a process of the step because the step went over its memory limit.</summary>
public sealed class StepMemoryLimitException(IReadOnlyList<string> args, long limitBytes, int exitCode, IReadOnlyList<OutputLine> outputTail)
    : StepLimitException(
        FarmErrorCodes.StepMemoryLimit,
        $"the command '{string.Join(' ', args)}' exceeded its memory limit of {StepLimits.FormatBytes(limitBytes)}: the kernel killed it (out of memory) and it exited with code {exitCode}. " +
        "Make the step use less memory, or have the farm's operator raise the limit (Farm:Worker:StepLimits:Memory, at most Farm:Worker:StepLimits:MaxMemory).",
        exitCode,
        outputTail)
{
    /// <summary>The limit the step went over, in bytes.</summary>
    public long LimitBytes { get; } = limitBytes;
}

/// <summary>FARM3021: the step reached its limit on processes and threads (a fork bomb, or too much parallelism) and was stopped.</summary>
public sealed class StepPidsLimitException(IReadOnlyList<string> args, int limit, int? exitCode, IReadOnlyList<OutputLine> outputTail)
    : StepLimitException(
        FarmErrorCodes.StepPidsLimit,
        $"the command '{string.Join(' ', args)}' reached its limit of {limit} processes and threads and was stopped. " +
        "Run fewer processes at once (e.g. a lower make -j), or have the farm's operator raise the limit (Farm:Worker:StepLimits:Pids, at most Farm:Worker:StepLimits:MaxPids).",
        exitCode,
        outputTail)
{
    /// <summary>The limit the step reached.</summary>
    public int Limit { get; } = limit;
}

/// <summary>FARM3022: the step ran longer than its time limit and was killed.</summary>
public sealed class StepTimeoutException(IReadOnlyList<string> args, TimeSpan timeout, IReadOnlyList<OutputLine> outputTail)
    : StepLimitException(
        FarmErrorCodes.StepTimeout,
        $"the command '{string.Join(' ', args)}' ran longer than its time limit of {StepLimits.FormatDuration(timeout)} and was killed. " +
        "Make the step faster or split it, or have the farm's operator raise the limit (Farm:Worker:StepLimits:Timeout, at most Farm:Worker:StepLimits:MaxTimeout).",
        null,
        outputTail)
{
    /// <summary>The time limit the step ran over.</summary>
    public TimeSpan Timeout { get; } = timeout;
}
