using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A remote farm as processes, for <c>farm build --farm</c>, <c>submit</c>, <c>status</c> and <c>logs</c>: one
/// <c>dotnet Farm.Coordinator.dll</c> (HTTP API on a free port, no Redis, cache store in a fresh repository of the
/// anonymous registry) and one worker on a RabbitMQ virtual host made for this class; a busybox base pushed to the
/// registry (<see cref="Base"/>).
/// </summary>
public sealed class RemoteFarmFixture : IAsyncLifetime
{
    private readonly ConcurrentQueue<string> _coordinatorOutput = new();
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private Process? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-remote-").FullName;

    public string Url { get; private set; } = string.Empty;

    public string Base => $"{TestRegistries.Anonymous}/{_repository}/busybox:1";

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public Dictionary<string, string> Env => new()
    {
        ["FARM_STATE_DIR"] = Path.Combine(Directory, "state"),
        ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
        ["FARM_HOST"] = Url,
        ["FARM_RABBITMQ"] = _vhost?.AmqpUrl ?? string.Empty,
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-cli-");
        var port = FreePort();
        Url = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        _coordinator = StartCoordinator(port);
        _worker = WorkerProcess.Start("cli-remote-worker", Path.Combine(Directory, "w"), _vhost.Name);

        Ok(await Farm("import", BuildFixture.BusyboxRootfs(Directory), Base));
        Ok(await Farm("push", Base));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    return (await http.GetAsync(Url + "/healthz")).IsSuccessStatusCode;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(90),
            () => "the coordinator process to answer /healthz" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-submit-build") == 1, TimeSpan.FromSeconds(60), () => "the coordinator to consume farm-submit-build" + Diagnostics());
    }

    internal Task<FarmCli.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    public string Diagnostics() =>
        $"{Environment.NewLine}--- coordinator:{Environment.NewLine}{string.Join(Environment.NewLine, _coordinatorOutput.TakeLast(30))}"
        + $"{Environment.NewLine}--- worker:{Environment.NewLine}{_worker?.OutputTail()}";

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }

        if (_coordinator is { HasExited: false })
        {
            _coordinator.Kill(entireProcessTree: true);
            await _coordinator.WaitForExitAsync();
        }

        _coordinator?.Dispose();
        if (_vhost is not null)
        {
            await _vhost.DisposeAsync();
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static void Ok(FarmCli.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Process StartCoordinator(int httpPort)
    {
        // The coordinator's own build output: its runtimeconfig names the ASP.NET Core framework.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var dll = Path.Combine(RepoPaths.RepoRoot, "coordinator", "bin", output.Parent!.Name, output.Name, "Farm.Coordinator.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build Farm.sln).");
        }

        var start = new ProcessStartInfo("dotnet", [dll]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(dll)! };
        start.Environment["FARM_RABBITMQ"] = _vhost!.AmqpUrl;
        start.Environment["Farm__Coordinator__HttpPort"] = httpPort.ToString(CultureInfo.InvariantCulture);
        start.Environment["Farm__Coordinator__SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
        start.Environment["Farm__Coordinator__GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture);
        start.Environment["Farm__Builds__CacheStore"] = $"registry://{TestRegistries.Anonymous}/{_repository}/cache";
        start.Environment["Farm__Builds__StateDirectory"] = Path.Combine(Directory, "coordinator");
        var process = Process.Start(start) ?? throw new InvalidOperationException($"dotnet {dll} did not start.");
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _coordinatorOutput.Enqueue(line);
        }
    }
}
