using System.Globalization;
using System.Net.Http.Headers;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A farm across simulated machines (<see cref="FarmHosts"/>): registry, Redis and RabbitMQ on the services host;
/// a coordinator on each coordinator host, clustered through Redis, its API on its own address with a token (it is
/// not on loopback); a worker on each of three worker hosts (a fourth host is left for <see cref="StartWorker"/>) (RabbitMQ heartbeat <see cref="Heartbeat"/>); the CLI runs on the client host. Nothing is on this
/// machine's loopback, so every address a process uses is one a second machine would use. A busybox base is in the
/// services registry (<see cref="Base"/>). Membership probes and the resume reminder are short
/// (<see cref="ProbeTimeout"/>, <see cref="MissedProbes"/>, <see cref="ResumeCheckPeriod"/>) so that a killed
/// coordinator host is noticed within seconds. Disposing stops the processes and removes the hosts.
/// </summary>
public sealed class MultiHostFarmFixture : IAsyncLifetime
{
    public const int HttpPort = 8480;

    /// <summary>The coordinators' <c>Farm:Coordinator:ProbeTimeout</c>.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The coordinators' <c>Farm:Coordinator:MissedProbesLimit</c>.</summary>
    public const int MissedProbes = 3;

    /// <summary>The coordinators' <c>Farm:Coordinator:ResumeCheckPeriod</c>.</summary>
    public static readonly TimeSpan ResumeCheckPeriod = TimeSpan.FromSeconds(5);

    /// <summary>The workers' <c>Farm:RabbitMq:Heartbeat</c>: how soon RabbitMQ notices a worker host that is cut off.</summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(5);

    private readonly List<CoordinatorProcess> _coordinators = [];
    private readonly List<(FarmHosts.Host Host, WorkerProcess Process)> _workers = [];
    private readonly HashSet<string> _cut = [];
    private FarmHosts? _hosts;
    private int _disposed;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-multihost-").FullName;

    public FarmHosts Hosts => _hosts ?? throw new InvalidOperationException("the hosts are not up");

    public string Token { get; private set; } = string.Empty;

    public CoordinatorProcess Coordinator1 => _coordinators[0];

    public CoordinatorProcess Coordinator2 => _coordinators[1];

    /// <summary>The workers started so far, each with its host.</summary>
    public IReadOnlyList<(FarmHosts.Host Host, WorkerProcess Process)> Workers => _workers;

    public string Repository => $"{Hosts.Registry}/t{Hosts.Id}";

    public string Base => $"{Repository}/busybox:1";

    /// <summary>The CLI's environment on the client host: the token, the services registry as an insecure one, RabbitMQ.</summary>
    public Dictionary<string, string> Env(string? token) => new()
    {
        ["FARM_STATE_DIR"] = Path.Combine(Directory, "client-state"),
        ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
        ["FARM_TOKEN"] = token ?? string.Empty,
        ["FARM_INSECURE_REGISTRIES"] = Hosts.Registry,
        ["FARM_RABBITMQ"] = Hosts.RabbitMqUrl,
    };

    /// <summary>Runs <c>farm <paramref name="args"/></c> on the client host with the tenant's token.</summary>
    public Task<CliProcess.Result> ClientAsync(params string[] args) =>
        CliProcess.RunAsync(Env(Token), TimeSpan.FromMinutes(4), null, args, Hosts.Client.Netns);

    public async Task InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch
        {
            // Nothing of a half-made farm may outlive the class: the hosts' processes, namespaces and bridge go now.
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        _hosts = await FarmHosts.UpAsync();
        (Token, var line) = await CoordinatorProcess.MintTokenAsync("team");
        var tokensFile = Path.Combine(Directory, "tokens");
        // Queued builds come from the AMQP user farm (the one user of this RabbitMQ): they are the team's.
        await File.WriteAllLinesAsync(tokensFile, [line, "team amqp:farm"]);

        var cluster = "farm-hosts-" + Hosts.Id;
        foreach (var (host, index) in new[] { Hosts.Coord1, Hosts.Coord2 }.Select((h, i) => (h, i)))
        {
            _coordinators.Add(CoordinatorProcess.StartOnHost(host.Netns, host.Address, HttpPort, new Dictionary<string, string>
            {
                ["FARM_RABBITMQ"] = Hosts.RabbitMqUrl,
                ["Farm__Coordinator__Redis"] = Hosts.Redis,
                ["Farm__Coordinator__ClusterId"] = cluster,
                ["Farm__Coordinator__ServiceId"] = cluster,
                ["Farm__Coordinator__HttpAddress"] = host.Address,
                ["Farm__Coordinator__HttpPort"] = HttpPort.ToString(CultureInfo.InvariantCulture),
                ["Farm__Coordinator__SiloAddress"] = host.Address,
                ["Farm__Coordinator__ProbeTimeout"] = ProbeTimeout.ToString(),
                ["Farm__Coordinator__MissedProbesLimit"] = MissedProbes.ToString(CultureInfo.InvariantCulture),
                ["Farm__Coordinator__ResumeCheckPeriod"] = ResumeCheckPeriod.ToString(),
                ["Farm__Coordinator__JobTimeout"] = "00:05:00",
                ["Farm__Coordinator__Auth__TokensFile"] = tokensFile,
                ["Farm__Builds__CacheStore"] = $"registry://{Repository}/cache",
                ["Farm__Builds__StateDirectory"] = Path.Combine(Directory, $"coordinator{index + 1}"),
                ["Farm__Registries__Insecure__0"] = Hosts.Registry,
            }));
        }

        foreach (var host in new[] { Hosts.Worker1, Hosts.Worker2, Hosts.Worker3 })
        {
            StartWorker(host);
        }

        var rootfs = BuildFixture.BusyboxRootfs(Directory);
        Ok(await ClientAsync("import", "-c", "CMD [\"sh\"]", rootfs, Base));
        Ok(await ClientAsync("push", Base));
        foreach (var coordinator in _coordinators)
        {
            await coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        }

        // A job published before a worker's queue is bound would be lost: wait until every worker has said it is there.
        await Wait.UntilAsync(async () => (await WorkersSeenAsync(Coordinator1)).Count == _workers.Count, TimeSpan.FromSeconds(90),
            () => $"the {_workers.Count} workers' heartbeats at {Coordinator1.Url}/api/workers{Diagnostics()}");
    }

    /// <summary>Starts a worker (one slot) on <paramref name="host"/>; the fixture stops it.</summary>
    public WorkerProcess StartWorker(FarmHosts.Host host)
    {
        var worker = WorkerProcess.Start(WorkerName(host), Path.Combine(Directory, host.Role), "/", new Dictionary<string, string>
        {
            ["FARM_RABBITMQ"] = Hosts.RabbitMqUrl,
            ["Farm__RabbitMq__Heartbeat"] = Heartbeat.ToString(),
            ["Farm__Registries__Insecure__0"] = Hosts.Registry,
        }, host.Netns);
        lock (_workers)
        {
            _workers.Add((host, worker));
        }

        return worker;
    }

    /// <summary>Cuts <paramref name="host"/> off the network (<see cref="FarmHosts.CutLinkAsync"/>); its worker no longer counts as <see cref="ReachableWorkers"/>.</summary>
    public async Task CutLinkAsync(FarmHosts.Host host)
    {
        lock (_cut)
        {
            _cut.Add(host.Role);
        }

        await Hosts.CutLinkAsync(host);
    }

    /// <summary>Workers that can take jobs: running, on a host still on the network.</summary>
    public int ReachableWorkers
    {
        get
        {
            lock (_cut)
            {
                return _workers.Count(w => !w.Process.HasExited && !_cut.Contains(w.Host.Role));
            }
        }
    }

    /// <summary>The <c>Farm:Worker:Name</c> of the worker on <paramref name="host"/>.</summary>
    public string WorkerName(FarmHosts.Host host) => $"{host.Role}-{Hosts.Id}";

    /// <summary>The workers a coordinator heard from recently (<c>/api/workers</c>).</summary>
    public async Task<IReadOnlyList<string>> WorkersSeenAsync(CoordinatorProcess coordinator)
    {
        using var http = Http();
        return await CoordinatorWorkers.NamesAsync(http, coordinator.Url);
    }

    /// <summary>An HTTP client that sends the tenant's token.</summary>
    public HttpClient Http()
    {
        var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return http;
    }

    /// <summary>Kills every process on a host with SIGKILL, the way a machine losing power ends them.</summary>
    public static async Task KillHostAsync(FarmHosts.Host host)
    {
        var pids = (await Tool.RunAsync("ip", "netns", "pids", host.Netns)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var pid in pids)
        {
            try
            {
                await Tool.RunAsync("kill", "-KILL", pid.Trim());
            }
            catch (InvalidOperationException)
            {
                // Ended on its own meanwhile.
            }
        }
    }

    /// <summary>Everything the coordinators and workers printed so far.</summary>
    public string Output() =>
        string.Join(Environment.NewLine, _coordinators.Select(c => c.Output()).Concat(_workers.Select(w => w.Process.Output())));

    public string Diagnostics() =>
        string.Concat(_coordinators.Select((c, i) => $"{Environment.NewLine}--- coordinator {i + 1} {c.Url} ({(c.HasExited ? "exited" : "running")}):{Environment.NewLine}{c.OutputTail()}"))
        + string.Concat(_workers.Select(w => $"{Environment.NewLine}--- worker {w.Process.Name} ({(w.Process.HasExited ? "exited" : "running")}):{Environment.NewLine}{w.Process.OutputTail()}"));

    public async Task DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        try
        {
            await Task.WhenAll(_workers.Select(w => w.Process.DisposeAsync().AsTask()).Concat(_coordinators.Select(c => c.DisposeAsync().AsTask())));
        }
        finally
        {
            if (_hosts is not null)
            {
                await _hosts.DisposeAsync();
            }

            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
