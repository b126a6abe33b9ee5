namespace Farm.Contracts;

/// <summary>
/// An error that is the build step's own fault (a failing RUN, a missing COPY source): retrying elsewhere won't help.
/// Its exit code and output tail go into <see cref="LayerBuildFailed"/>.
/// </summary>
/// <remarks>
/// Here rather than in the worker because the failures are thrown by the libraries the worker drives (the RUN sandbox
/// of Farm.Containers), which do not depend on the worker.
/// </remarks>
public interface IStepFailure
{
    int? ExitCode { get; }

    IReadOnlyList<string> OutputTail { get; }
}
