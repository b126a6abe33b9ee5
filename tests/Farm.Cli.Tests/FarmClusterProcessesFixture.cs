using System.Collections.Concurrent;
using System.Diagnostics;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A farm of coordinator processes that cluster through Redis (grain state, reminders, the shared build event stream)
/// and one worker process, on a RabbitMQ virtual host made for this class; a busybox base pushed to the anonymous
/// registry (<see cref="Base"/>). Tests start their own coordinators (<see cref="StartCoordinatorsAsync"/>), so that
/// one can kill them, and stop them before they end: coordinators of every cluster on the virtual host share the
/// job results queue, and a result taken by another test's cluster would never reach its build. Redis, RabbitMQ, the registry and runc must be there: infra/up.sh.
/// </summary>
public sealed class FarmClusterProcessesFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private readonly List<CoordinatorProcess> _coordinators = [];
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-cluster-").FullName;

    public string Base => $"{Repository}/busybox:1";

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    /// <summary>The CLI's environment; the coordinators are named by each test's --farm.</summary>
    public Dictionary<string, string> Env => new()
    {
        ["FARM_STATE_DIR"] = Path.Combine(Directory, "state"),
        ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
        ["FARM_RABBITMQ"] = _vhost?.AmqpUrl ?? string.Empty,
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        await EnsureRedisAsync();
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-cluster-");
        _worker = WorkerProcess.Start("cli-cluster-worker", Path.Combine(Directory, "w"), _vhost.Name);
        Ok(await FarmCli.RunAsync(Env, null, "import", BuildFixture.BusyboxRootfs(Directory), Base));
        Ok(await FarmCli.RunAsync(Env, null, "push", Base));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());
    }

    /// <summary>
    /// <paramref name="count"/> coordinators of a new cluster on Redis, answering /healthz; an unfinished build's
    /// reminder fires every two seconds, so a build whose coordinator died resumes soon after the cluster declares it dead.
    /// Disposing the result stops them.
    /// </summary>
    public async Task<Coordinators> StartCoordinatorsAsync(int count)
    {
        var cluster = "farm-cli-" + Guid.NewGuid().ToString("N")[..10];
        var started = new CoordinatorProcess[count];
        for (var i = 0; i < count; i++)
        {
            started[i] = CoordinatorProcess.Start(_vhost!.AmqpUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, $"c{_coordinators.Count}"), new Dictionary<string, string>
            {
                ["Farm__Coordinator__Redis"] = "127.0.0.1:6379",
                ["Farm__Coordinator__ClusterId"] = cluster,
                ["Farm__Coordinator__ServiceId"] = cluster,
                ["Farm__Coordinator__ResumeCheckPeriod"] = "00:00:02",
            });
            lock (_coordinators)
            {
                _coordinators.Add(started[i]);
            }
        }

        var group = new Coordinators(this, started);
        try
        {
            foreach (var coordinator in started)
            {
                await coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
            }
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }

        return group;
    }

    /// <summary>Coordinators of one cluster, stopped (and forgotten by the fixture) when disposed.</summary>
    public sealed class Coordinators(FarmClusterProcessesFixture fixture, CoordinatorProcess[] processes) : IAsyncDisposable
    {
        public CoordinatorProcess this[int index] => processes[index];

        public async ValueTask DisposeAsync()
        {
            foreach (var process in processes)
            {
                lock (fixture._coordinators)
                {
                    fixture._coordinators.Remove(process);
                }

                await process.DisposeAsync();
            }
        }
    }

    public string Diagnostics() =>
        string.Concat(_coordinators.ToList().Select((c, i) => $"{Environment.NewLine}--- coordinator {i} {c.Url} ({(c.HasExited ? "exited" : "running")}):{Environment.NewLine}{c.OutputTail()}"))
        + $"{Environment.NewLine}--- worker:{Environment.NewLine}{_worker?.OutputTail()}";

    public async Task DisposeAsync()
    {
        foreach (var coordinator in _coordinators)
        {
            await coordinator.DisposeAsync();
        }

        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }

        if (_vhost is not null)
        {
            await _vhost.DisposeAsync();
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static async Task EnsureRedisAsync()
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            await client.ConnectAsync("127.0.0.1", 6379).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new InvalidOperationException("Redis does not answer on 127.0.0.1:6379: start it with infra/up.sh (or infra/redis.sh start).", e);
        }
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}

/// <summary>A <c>farm</c> process left running while a test watches what it prints, line by line.</summary>
internal sealed class RunningCli : IDisposable
{
    private readonly Process _process;

    private RunningCli(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Add(Stdout, e.Data);
        _process.ErrorDataReceived += (_, e) => Add(Stderr, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public ConcurrentQueue<string> Stdout { get; } = new();

    public ConcurrentQueue<string> Stderr { get; } = new();

    public static RunningCli Start(IReadOnlyDictionary<string, string> environment, params string[] args) => StartOnHost(null, environment, args);

    /// <summary>Starts <c>farm <paramref name="args"/></c> on a host of <see cref="FarmHosts"/> (network namespace <paramref name="netns"/>; null: this machine).</summary>
    public static RunningCli StartOnHost(string? netns, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(netns is null ? "dotnet" : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (netns is not null)
        {
            foreach (var arg in FarmHosts.EnterArguments(netns))
            {
                start.ArgumentList.Add(arg);
            }

            start.ArgumentList.Add("dotnet");
        }

        start.ArgumentList.Add(FarmProcess.Dll("cli", "farm"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment().Concat(environment))
        {
            start.Environment[key] = value;
        }

        return new RunningCli(Process.Start(start) ?? throw new InvalidOperationException("dotnet farm.dll did not start."));
    }

    /// <summary>Waits for the process to end (killing it after <paramref name="timeout"/>, then failing) and returns its exit code.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan timeout, Func<string> diagnostics)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
            Assert.Fail($"farm did not end within {timeout}; it printed:{Environment.NewLine}{this}{diagnostics()}");
        }

        // The last lines are read once the process ended.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public override string ToString() =>
        $"--- stdout:{Environment.NewLine}{string.Join(Environment.NewLine, Stdout)}{Environment.NewLine}--- stderr:{Environment.NewLine}{string.Join(Environment.NewLine, Stderr)}";

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static void Add(ConcurrentQueue<string> lines, string? line)
    {
        if (line is not null)
        {
            lines.Enqueue(line);
        }
    }
}
