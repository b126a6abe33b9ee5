using System.Collections.Concurrent;
using System.Diagnostics;

namespace Farm.Testing;

/// <summary>A worker process started with <c>dotnet Farm.Worker.dll</c>; disposing kills it and whatever its jobs left.</summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output;

    private WorkerProcess(string name, string stateDirectory, Process process, ConcurrentQueue<string> output)
    {
        Name = name;
        StateDirectory = stateDirectory;
        _process = process;
        _output = output;
    }

    public string Name { get; }

    public string StateDirectory { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The process id, to signal it without waiting for it to exit (a SIGTERM whose drain a test watches).</summary>
    public int Id => _process.Id;

    /// <summary>runc's state directory of this worker (see SandboxRunner: StateDirectory/run/runc).</summary>
    public string RuncRoot => Path.Combine(StateDirectory, "run", "runc");

    /// <param name="environment">More variables for the process (telemetry settings, say); they win over the defaults.</param>
    /// <param name="netns">A host of <see cref="FarmHosts"/> to run on (its network namespace); null: this machine.</param>
    public static WorkerProcess Start(string name, string stateDirectory, string virtualHost, IReadOnlyDictionary<string, string>? environment = null, string? netns = null)
    {
        var variables = new Dictionary<string, string>
        {
            ["Farm__Worker__Name"] = name,
            ["Farm__Worker__StateDirectory"] = stateDirectory,
            ["Farm__Worker__Slots"] = "1",
            ["FARM_RABBITMQ"] = $"amqp://guest:guest@127.0.0.1:5672/{virtualHost}",
            ["Logging__LogLevel__Default"] = "Information",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            variables[key] = value;
        }

        var output = new ConcurrentQueue<string>();
        return new WorkerProcess(name, stateDirectory, FarmProcess.Start(FarmProcess.Dll("worker/host", "farm-worker"), variables, output, netns), output);
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

    public string OutputTail() => FarmProcess.Tail(_output);

    /// <summary>Every line the process wrote so far, standard output and error.</summary>
    public string Output() => string.Join(Environment.NewLine, _output);

    /// <summary>Stops the process (SIGTERM, then SIGKILL) without touching what it left behind.</summary>
    public Task StopAsync() => FarmProcess.StopAsync(_process, TimeSpan.FromSeconds(20));

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

        await RemoveNetworksAsync();
        _process.Dispose();
    }

    /// <summary>
    /// The RUN steps' network namespaces a killed worker could not remove (its next start would, but a test's worker
    /// does not start again): each has a record named after it under run/networks (see SandboxNetworks).
    /// </summary>
    private async Task RemoveNetworksAsync()
    {
        var records = Path.Combine(StateDirectory, "run", "networks");
        if (!Directory.Exists(records))
        {
            return;
        }

        foreach (var record in Directory.EnumerateFiles(records))
        {
            if (File.Exists(Path.Combine("/run/netns", Path.GetFileName(record))))
            {
                await Tool.RunAsync("ip", "netns", "delete", Path.GetFileName(record));
            }
        }
    }
}
