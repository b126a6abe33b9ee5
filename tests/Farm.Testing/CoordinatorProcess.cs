using System.Collections.Concurrent;
using System.Diagnostics;

namespace Farm.Testing;

/// <summary>A coordinator process started with <c>dotnet Farm.Coordinator.dll</c>; disposing stops it (SIGTERM, then SIGKILL).</summary>
public sealed class CoordinatorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private CoordinatorProcess(IReadOnlyDictionary<string, string> environment) =>
        _process = FarmProcess.Start(FarmProcess.Dll("coordinator", "Farm.Coordinator"), environment, _output);

    public bool HasExited => _process.HasExited;

    /// <summary>Starts a coordinator configured by <paramref name="environment"/> (<c>FARM_RABBITMQ</c>, <c>Farm__Coordinator__HttpPort</c>, ...).</summary>
    public static CoordinatorProcess Start(IReadOnlyDictionary<string, string> environment) => new(environment);

    public string OutputTail() => FarmProcess.Tail(_output);

    public async ValueTask DisposeAsync()
    {
        await FarmProcess.StopAsync(_process, TimeSpan.FromSeconds(30));
        _process.Dispose();
    }
}
