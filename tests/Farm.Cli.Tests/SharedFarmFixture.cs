using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A shared farm as processes: a coordinator with a tokens file (tenants <c>acme</c> and <c>globex</c> with build
/// tokens, a read-only token of acme, AMQP user <see cref="AcmeAmqpUrl"/> mapped to acme) serving HTTPS with a
/// certificate of a throwaway CA, at Debug log level so that whatever it logs is checked for tokens; one worker with a
/// RabbitMQ user of its own (<c>Farm:Coordinator:Auth:WorkerAmqpUsers</c>), as an operator sets up workers; a RabbitMQ
/// virtual host of its own; a busybox base in the anonymous registry; the host network granted (a step waits on the
/// test through a <see cref="LoopbackGate"/>). The tokens are minted with
/// <c>farm-coordinator token create</c>, as an operator does.
/// </summary>
public sealed class SharedFarmFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-shared-").FullName;

    public string Base => $"{Repository}/busybox:1";

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public CoordinatorProcess Coordinator => _coordinator!;

    public RabbitMqVirtualHost VirtualHost => _vhost!;

    public TestCertificates Certificates { get; private set; } = null!;

    public string AcmeToken { get; private set; } = string.Empty;

    public string GlobexToken { get; private set; } = string.Empty;

    public string AcmeReadToken { get; private set; } = string.Empty;

    /// <summary>An admin token (tenant ops): sees every tenant's builds.</summary>
    public string AdminToken { get; private set; } = string.Empty;

    /// <summary>A RabbitMQ user allowed to write to the SubmitBuild exchange only, mapped to acme in the tokens file.</summary>
    public string AcmeAmqpUrl { get; private set; } = string.Empty;

    /// <summary>A RabbitMQ user allowed to write to the SubmitBuild exchange, in no tenant.</summary>
    public string StrangerAmqpUrl { get; private set; } = string.Empty;

    /// <summary>
    /// A RabbitMQ user of tenant globex misconfigured with write permission on the job results' exchanges
    /// (<c>LayerBuilt</c>, <c>LayerBuildFailed</c>) besides SubmitBuild's.
    /// </summary>
    public string ForgerAmqpUrl { get; private set; } = string.Empty;

    /// <summary>The worker's name: the one a real job result carries.</summary>
    public const string WorkerName = "shared-worker";

    /// <summary>A RabbitMQ user with no permission to write anywhere.</summary>
    public string UnprivilegedAmqpUrl { get; private set; } = string.Empty;

    /// <summary>Every token minted here: none may appear in the coordinator's output.</summary>
    public IReadOnlyList<string> Tokens => [AcmeToken, GlobexToken, AcmeReadToken, AdminToken];

    /// <summary>The CLI's environment for tenant <paramref name="token"/>'s user: the coordinator over HTTPS, its CA, the token.</summary>
    public Dictionary<string, string> Env(string? token) => new(FarmCli.ClientEnv(Directory, _coordinator?.Url))
    {
        ["FARM_CA"] = Certificates.CaPath,
        ["FARM_TOKEN"] = token ?? string.Empty,
        ["FARM_RABBITMQ"] = _vhost?.AmqpUrl ?? string.Empty,
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-shared-");
        Certificates = TestCertificates.Create(Path.Combine(Directory, "tls"));
        var exchange = "^Farm\\.Contracts:SubmitBuild$";
        var acmeUser = _vhost.Name + "-acme";
        AcmeAmqpUrl = await _vhost.AddUserAsync(acmeUser, "acme-" + Guid.NewGuid().ToString("N"), exchange);
        StrangerAmqpUrl = await _vhost.AddUserAsync(_vhost.Name + "-stranger", "s-" + Guid.NewGuid().ToString("N"), exchange);
        UnprivilegedAmqpUrl = await _vhost.AddUserAsync(_vhost.Name + "-nobody", "n-" + Guid.NewGuid().ToString("N"), "^$");
        var forgerUser = _vhost.Name + "-forger";
        ForgerAmqpUrl = await _vhost.AddUserAsync(forgerUser, "f-" + Guid.NewGuid().ToString("N"), "^Farm\\.Contracts:(SubmitBuild|LayerBuilt|LayerBuildFailed|StepLogLine|WorkerHeartbeat)$");
        var workerUser = _vhost.Name + "-worker";
        var workerUrl = await _vhost.AddUserAsync(workerUser, "w-" + Guid.NewGuid().ToString("N"), ".*", ".*", ".*");

        var lines = new List<string> { "# tenants of the shared farm test" };
        (AcmeToken, var acme) = await CoordinatorProcess.MintTokenAsync("acme");
        (GlobexToken, var globex) = await CoordinatorProcess.MintTokenAsync("globex");
        (AcmeReadToken, var reader) = await CoordinatorProcess.MintTokenAsync("acme", "read");
        (AdminToken, var admin) = await CoordinatorProcess.MintTokenAsync("ops", "admin");
        lines.AddRange([acme, globex, reader, admin, $"acme amqp:{acmeUser}", $"globex amqp:{forgerUser}"]);
        var tokensFile = Path.Combine(Directory, "tokens");
        await File.WriteAllLinesAsync(tokensFile, lines);

        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, "coordinator"), new Dictionary<string, string>
        {
            ["Farm__Coordinator__Auth__TokensFile"] = tokensFile,
            ["Farm__Coordinator__Tls__CertificatePath"] = Certificates.CertificatePath,
            ["Farm__Coordinator__Tls__KeyPath"] = Certificates.KeyPath,
            ["Logging__LogLevel__Default"] = "Debug",
            ["Farm__Coordinator__Auth__WorkerAmqpUsers__0"] = workerUser,
            ["Farm__Builds__Entitlements__0"] = "network.host",
        });
        _worker = WorkerProcess.Start(WorkerName, Path.Combine(Directory, "w"), _vhost.Name, new Dictionary<string, string> { ["FARM_RABBITMQ"] = workerUrl });

        var rootfs = BuildFixture.BusyboxRootfs(Directory);
        Ok(await FarmCli.RunAsync(Env(null), null, "import", rootfs, Base));
        Ok(await FarmCli.RunAsync(Env(null), null, "push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-submit-build") == 1, TimeSpan.FromSeconds(60), () => "the coordinator to consume farm-submit-build" + Diagnostics());
    }

    /// <summary>An HTTP client of the coordinator that trusts the test CA (and nothing else) and sends <paramref name="token"/>.</summary>
    public HttpClient Http(string? token) => Coordinator.Http(token, Certificates.CaPath);

    public string Diagnostics() => Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), ("worker", _worker?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_worker, _coordinator, _vhost);
        System.IO.Directory.Delete(Directory, recursive: true);
    }


    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
