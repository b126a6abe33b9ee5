using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Farm.Testing;

/// <summary>Starting and stopping Farm's own processes (<c>dotnet Farm.X.dll</c>) the way a deployment does.</summary>
public static class FarmProcess
{
    /// <summary>
    /// The process's own build output (<c>{folder}/bin/&lt;configuration&gt;/&lt;framework&gt;/{assembly}.dll</c>), as a
    /// deployed process runs: a test's output directory can lack files a plain process loads from next to it (the
    /// coordinator's runtimeconfig names the ASP.NET Core framework).
    /// </summary>
    public static string Dll(string folder, string assembly)
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var dll = Path.Combine(RepoPaths.RepoRoot, folder, "bin", output.Parent!.Name, output.Name, assembly + ".dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build Farm.sln).");
    }

    /// <summary>
    /// What a <c>farm</c> process needs in its environment to start the local farm daemon of this build: the daemon's
    /// dll, and an idle timeout short enough that the daemons the tests start end soon after the tests.
    /// </summary>
    public static IReadOnlyDictionary<string, string> LocalFarmEnvironment() => new Dictionary<string, string>
    {
        ["FARM_DAEMON"] = Dll("coordinator/host", "farm-coordinator"),
        ["Farm__Local__IdleTimeout"] = "00:00:30",
    };

    /// <summary>
    /// Starts <c>dotnet <paramref name="dll"/></c> with <paramref name="environment"/>; its output lines go to
    /// <paramref name="output"/>. With <paramref name="netns"/> the process runs in that network namespace (a host of
    /// <see cref="FarmHosts"/>): nsenter joins it and then becomes the process, so its id is the process's own.
    /// </summary>
    public static Process Start(string dll, IReadOnlyDictionary<string, string> environment, ConcurrentQueue<string> output, string? netns = null)
    {
        var start = new ProcessStartInfo(netns is null ? "dotnet" : "nsenter")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        if (netns is not null)
        {
            foreach (var arg in FarmHosts.EnterArguments(netns))
            {
                start.ArgumentList.Add(arg);
            }

            start.ArgumentList.Add("dotnet");
        }

        start.ArgumentList.Add(dll);
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        return Collect(Process.Start(start) ?? throw new InvalidOperationException($"dotnet {dll} did not start."), output);
    }

    /// <summary>
    /// Starts a service a test runs on its own (redis-server, docker-registry) in <paramref name="workingDirectory"/>; its
    /// output lines go to <paramref name="output"/>. A program that is not installed fails saying which Debian package
    /// (<paramref name="package"/>) infra/install.sh installs it from.
    /// </summary>
    public static Process StartService(string file, string package, IEnumerable<string> arguments, string workingDirectory, ConcurrentQueue<string> output)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            return Collect(Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start."), output);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{file} is missing: run infra/install.sh (apt-get install -y {package}).", e);
        }
    }

    /// <summary>SIGTERM (the graceful path production uses), then SIGKILL after <paramref name="grace"/>.</summary>
    public static async Task StopAsync(Process process, TimeSpan grace)
    {
        if (process.HasExited)
        {
            return;
        }

        await Tool.RunAsync("kill", "-TERM", process.Id.ToString(CultureInfo.InvariantCulture));
        using var timeout = new CancellationTokenSource(grace);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    public static string Tail(ConcurrentQueue<string> output) => string.Join(Environment.NewLine, output.TakeLast(40));

    /// <summary>
    /// Reads <paramref name="process"/>'s standard output and error (both redirected) line by line into
    /// <paramref name="output"/>, for <see cref="Tail"/>; returns the process.
    /// </summary>
    public static Process Collect(Process process, ConcurrentQueue<string> output)
    {
        ArgumentNullException.ThrowIfNull(process);
        process.OutputDataReceived += (_, e) => Add(output, e.Data);
        process.ErrorDataReceived += (_, e) => Add(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Whether something accepts TCP connections on 127.0.0.1:<paramref name="port"/>: a service's readiness probe.</summary>
    public static async Task<bool> AnswersAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void Add(ConcurrentQueue<string> output, string? line)
    {
        if (line is not null)
        {
            output.Enqueue(line);
        }
    }
}
