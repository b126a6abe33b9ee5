using System.Diagnostics;

namespace Farm.Testing;

/// <summary>
/// Runs the <c>farm</c> command as a user does (<c>dotnet cli/bin/&lt;configuration&gt;/&lt;framework&gt;/farm.dll</c>),
/// in a process of its own, and captures what it printed.
/// </summary>
public static class CliProcess
{
    /// <summary>What the command printed and how it exited.</summary>
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}{Environment.NewLine}--- stdout:{Environment.NewLine}{Stdout}{Environment.NewLine}--- stderr:{Environment.NewLine}{Stderr}";
    }

    /// <summary>Runs <c>farm <paramref name="args"/></c> with <paramref name="environment"/> added; kills it after <paramref name="timeout"/>.</summary>
    public static Task<Result> RunAsync(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, params string[] args) =>
        RunAsync(environment, timeout, stdin: null, args);

    /// <summary>Runs <c>farm <paramref name="args"/></c> with <paramref name="stdin"/> as its standard input (none when null).</summary>
    /// <remarks>The arguments are a list, not params, so that a call can never take its first argument for the input.</remarks>
    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, string? stdin, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(args);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(FarmProcess.Dll("cli", "farm"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment().Concat(environment))
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet farm.dll did not start.");
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"farm {string.Join(' ', args)} did not end within {timeout}:{Environment.NewLine}{await stdout}{Environment.NewLine}{await stderr}");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }
}
