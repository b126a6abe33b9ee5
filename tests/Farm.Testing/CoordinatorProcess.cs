using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Farm.Testing;

/// <summary>
/// A coordinator process started with <c>dotnet Farm.Coordinator.dll</c> (its own build output, whose runtimeconfig
/// names the ASP.NET Core framework): HTTP API on a free loopback port, localhost silo on free ports, no Redis.
/// Disposing kills it.
/// </summary>
public sealed class CoordinatorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private CoordinatorProcess(Process process, int httpPort)
    {
        _process = process;
        Url = $"http://127.0.0.1:{httpPort.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The HTTP API, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Url { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Starts it on RabbitMQ's <paramref name="virtualHost"/> with <paramref name="settings"/> as environment (<c>Farm__Builds__CacheStore</c> ...).</summary>
    public static CoordinatorProcess Start(string virtualHost, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var dll = Path.Combine(RepoPaths.RepoRoot, "coordinator", "bin", output.Parent!.Name, output.Name, "Farm.Coordinator.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build Farm.sln).");
        }

        var httpPort = FreePort();
        var start = new ProcessStartInfo("dotnet", [dll]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(dll)! };
        start.Environment["FARM_RABBITMQ"] = $"amqp://guest:guest@127.0.0.1:5672/{virtualHost}";
        start.Environment["Farm__Coordinator__HttpPort"] = httpPort.ToString(CultureInfo.InvariantCulture);
        start.Environment["Farm__Coordinator__SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
        start.Environment["Farm__Coordinator__GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"dotnet {dll} did not start.");
        var coordinator = new CoordinatorProcess(process, httpPort);
        process.OutputDataReceived += (_, e) => coordinator.Add(e.Data);
        process.ErrorDataReceived += (_, e) => coordinator.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return coordinator;
    }

    /// <summary>Waits until <c>/healthz</c> answers (the silo and the bus are up), or fails with the process's output.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    using var response = await http.GetAsync(Url + "/healthz").ConfigureAwait(false);
                    return response.IsSuccessStatusCode;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            },
            timeout,
            () => $"the coordinator process to answer {Url}/healthz{Environment.NewLine}{OutputTail()}").ConfigureAwait(false);
    }

    public string OutputTail(int lines = 30) => string.Join(Environment.NewLine, _output.TakeLast(lines));

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}
