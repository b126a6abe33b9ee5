using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A <c>farm build</c> interrupted as a user does it: started, left running until its RUN step prints "started",
/// then sent SIGINT (Ctrl-C). The command must end with exit code 130 and <c>farm: cancelled</c>, and no process of
/// the step (its command line holds <c>marker</c>) may be left on this machine.
/// </summary>
internal static class CancelledBuild
{
    public static async Task RunAsync(IReadOnlyDictionary<string, string> environment, string marker, params string[] args)
    {
        var start = new ProcessStartInfo(CliProcess.Command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in CliProcess.Command.Skip(1).Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment().Concat(environment))
        {
            start.Environment[key] = value;
        }

        using var cli = Process.Start(start)!;
        // Plain progress goes to standard error, as BuildKit's does.
        var stderr = new ConcurrentQueue<string>();
        cli.ErrorDataReceived += (_, e) => stderr.Enqueue(e.Data ?? string.Empty);
        var stdout = cli.StandardOutput.ReadToEndAsync();
        cli.BeginErrorReadLine();
        await Wait.UntilAsync(() => stderr.Any(l => l.EndsWith(" started", StringComparison.Ordinal)), TimeSpan.FromMinutes(2), () => $"the RUN step to print 'started'; farm printed:\n{string.Join('\n', stderr)}");
        Assert.NotEmpty(Processes(marker));

        await Tool.RunAsync("kill", "-INT", cli.Id.ToString(CultureInfo.InvariantCulture));
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            await cli.WaitForExitAsync(timeout.Token);
        }

        await stdout;
        Assert.Equal(130, cli.ExitCode);
        Assert.Contains(stderr, l => l == "farm: cancelled");
        await Wait.UntilAsync(() => Processes(marker).Count == 0, TimeSpan.FromSeconds(30), () => $"the step's processes ({marker}) to be gone");
    }

    /// <summary>The processes whose command line holds <paramref name="inCommandLine"/>.</summary>
    public static List<int> Processes(string inCommandLine)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(inCommandLine, StringComparison.Ordinal))
                    {
                        found.Add(pid);
                    }
                }
                catch (IOException)
                {
                    // Gone meanwhile.
                }
            }
        }

        return found;
    }
}
