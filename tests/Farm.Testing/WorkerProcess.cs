using System.Collections.Concurrent;
using System.Diagnostics;

namespace Farm.Testing;

/// <summary>A worker process started with <c>dotnet Farm.Worker.dll</c>; disposing kills it and whatever its jobs left.</summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private WorkerProcess(string name, string stateDirectory, Process process)
    {
        Name = name;
        StateDirectory = stateDirectory;
        _process = process;
    }

    public string Name { get; }

    public string StateDirectory { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>runc's state directory of this worker (see RuncRunner: StateDirectory/run/runc).</summary>
    public string RuncRoot => Path.Combine(StateDirectory, "run", "runc");

    /// <param name="environment">More variables for the process (telemetry settings, say); they win over the defaults.</param>
    public static WorkerProcess Start(string name, string stateDirectory, string virtualHost, IReadOnlyDictionary<string, string>? environment = null)
    {
        // The worker's own build output (worker/bin/<configuration>/<framework>), as a deployed worker runs: a test's
        // output directory can lack files a plain worker process loads from next to it.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var dll = Path.Combine(RepoPaths.RepoRoot, "worker", "bin", output.Parent!.Name, output.Name, "Farm.Worker.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build Farm.sln).");
        }
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        start.Environment["Farm__Worker__Name"] = name;
        start.Environment["Farm__Worker__StateDirectory"] = stateDirectory;
        start.Environment["Farm__Worker__Slots"] = "1";
        start.Environment["FARM_RABBITMQ"] = $"amqp://guest:guest@127.0.0.1:5672/{virtualHost}";
        start.Environment["Logging__LogLevel__Default"] = "Information";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"dotnet {dll} did not start.");
        var worker = new WorkerProcess(name, stateDirectory, process);
        process.OutputDataReceived += (_, e) => worker.Add(e.Data);
        process.ErrorDataReceived += (_, e) => worker.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>The containers runc runs for this worker right now.</summary>
    public async Task<IReadOnlyList<string>> ContainersAsync()
    {
        if (!Directory.Exists(RuncRoot))
        {
            return [];
        }

        return (await Tool.RunAsync("runc", "--root", RuncRoot, "list", "--quiet")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>SIGKILL: the process gets no chance to finish, acknowledge or clean up.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
    }

    /// <summary>Kills the containers a dead worker left running, as a restarted worker would.</summary>
    public async Task RemoveOrphansAsync()
    {
        foreach (var id in await ContainersAsync())
        {
            await Tool.RunAsync("runc", "--root", RuncRoot, "delete", "--force", id);
        }
    }

    public string OutputTail() => string.Join(Environment.NewLine, _output.TakeLast(40));

    private void Add(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }

    /// <summary>Stops the process (SIGTERM, then SIGKILL) without touching what it left behind.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM first: the graceful path is what production uses.
            await Tool.RunAsync("kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            await RemoveOrphansAsync();
        }
        catch (InvalidOperationException)
        {
            // runc failed on a half-deleted container; the mounts below are still removed.
        }

        foreach (var mount in Mounts.Under(StateDirectory).OrderByDescending(m => m.Length))
        {
            await Tool.RunAsync("umount", "-l", mount);
        }

        _process.Dispose();
    }
}
