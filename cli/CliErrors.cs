using Farm.Contracts;
using Farm.Containers;

namespace Farm.Cli;

/// <summary>
/// The one place the farm command turns an error into what a user sees: a single line on standard error,
/// <c>farm: CODE: what is wrong; what to do</c>, never a stack trace, and the process exit code. Command bodies run
/// inside <see cref="RunAsync"/>, or catch with <see cref="Handles"/> and call <see cref="Report"/>.
/// </summary>
internal static class CliErrors
{
    /// <summary>The command failed.</summary>
    public const int Failed = 1;

    /// <summary><c>farm run</c>/<c>exec</c>: the container could not be run at all (docker's convention).</summary>
    public const int ContainerNotRun = 125;

    /// <summary>The command was cancelled (Ctrl-C): 128 + SIGINT, as a shell reports it.</summary>
    public const int Cancelled = 130;

    /// <summary>
    /// The exceptions a command reports as one line: Farm's own, cancellation, and the file system, permission and
    /// HTTP failures of the libraries underneath. Anything else is a defect of farm and keeps its stack trace.
    /// </summary>
    public static bool Handles(Exception exception) =>
        exception is FarmException or OperationCanceledException or IOException or UnauthorizedAccessException
            or HttpRequestException or InvalidOperationException;

    /// <summary>Writes <paramref name="exception"/> to <paramref name="error"/> as one line and returns the exit code.</summary>
    public static int Report(Exception exception, TextWriter error) => Write(exception, error, Failed);

    /// <summary>
    /// As <see cref="Report"/>, with docker's exit codes for <c>farm run</c> and <c>exec</c>: the container's own code
    /// when its process could not start (126, 127), <see cref="ContainerNotRun"/> for every other failure.
    /// </summary>
    public static int ReportContainer(Exception exception, TextWriter error) =>
        Write(exception, error, exception is ContainerStartException start ? start.ExitCode : ContainerNotRun);

    /// <summary>Runs a command body and reports what <see cref="Handles"/> covers.</summary>
    public static async Task<int> RunAsync(TextWriter error, Func<Task<int>> body)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e) when (Handles(e))
        {
            return Report(e, error);
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> for each of <paramref name="names"/>, as docker's rm, rmi, stop and start do: one
    /// that fails is reported (one line) and the others are still done; the exit code is that of the first failure,
    /// 0 when none failed. Cancellation stops at once.
    /// </summary>
    public static async Task<int> EachAsync(IEnumerable<string> names, TextWriter error, Func<string, Task> action)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(action);
        var code = 0;
        foreach (var name in names)
        {
            try
            {
                await action(name).ConfigureAwait(false);
            }
            catch (Exception e) when (Handles(e) && e is not OperationCanceledException)
            {
                var failed = Report(e, error);
                code = code == 0 ? failed : code;
            }
        }

        return code;
    }

    /// <summary>Runs a synchronous command body and reports what <see cref="Handles"/> covers.</summary>
    public static int Run(TextWriter error, Func<int> body)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return body();
        }
        catch (Exception e) when (Handles(e))
        {
            return Report(e, error);
        }
    }

    private static int Write(Exception exception, TextWriter error, int failed)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(error);
        switch (exception)
        {
            case FarmException farm:
                // The message already starts with the code.
                error.WriteLine($"farm: {farm.Message}");
                return failed;
            case OperationCanceledException:
                error.WriteLine("farm: cancelled");
                return Cancelled;
            default:
                // Not one of ours: still one line with a code, and the type says which library failed.
                error.WriteLine($"farm: {FarmErrorCodes.CliSystemError}: {exception.GetType().Name}: {exception.Message}");
                return failed;
        }
    }
}
