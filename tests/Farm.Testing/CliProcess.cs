using System.Diagnostics;

namespace Farm.Testing;

/// <summary>
/// Runs the <c>farm</c> command as a user does, in a process of its own, and captures what it printed: the native
/// binary <c>FARM_TEST_CLI</c> names (tests/run.sh publishes it as ./farm does), else
/// <c>dotnet cli/bin/&lt;configuration&gt;/&lt;framework&gt;/farm.dll</c>.
/// </summary>
public static class CliProcess
{
    /// <summary>
    /// The command line that runs <c>farm</c>: tests/run.sh points <c>FARM_TEST_CLI</c> at the CLI as ./farm publishes it
    /// (compiled ahead of time), so the suite runs the binary users run; a plain <c>dotnet test</c> runs the built farm.dll.
    /// </summary>
    public static IReadOnlyList<string> Command { get; } = Environment.GetEnvironmentVariable("FARM_TEST_CLI") is { Length: > 0 } cli
        ? [cli]
        : ["dotnet", FarmProcess.Dll("cli", "farm")];

    /// <summary><see cref="Command"/> as words for a shell (the paths hold no spaces or quotes).</summary>
    public static string CommandText => string.Join(' ', Command);

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
    public static Task<Result> RunAsync(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, string? stdin, IReadOnlyList<string> args) =>
        RunAsync(environment, timeout, stdin, args, netns: null);

    /// <summary>Runs <c>farm <paramref name="args"/></c> on a host of <see cref="FarmHosts"/> (network namespace <paramref name="netns"/>; null: this machine).</summary>
    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string> environment, TimeSpan timeout, string? stdin, IReadOnlyList<string> args, string? netns)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(args);
        IReadOnlyList<string> command = netns is null ? Command : [.. FarmHosts.EnterCommand(netns), .. Command];
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment().Concat(environment))
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start.");
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
