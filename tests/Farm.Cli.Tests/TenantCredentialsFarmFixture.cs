using System.Text;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A shared farm whose tenants push to the basic-auth test registry, as processes: a coordinator with tokens for
/// tenants <c>acme</c> and <c>globex</c> and an admin, where only acme has registry credentials on the farm
/// (<c>Farm:Coordinator:Tenants:acme:RegistryAuthFile</c>); the coordinator's own Docker config holds credentials for
/// that registry too, which no tenant's build may use. Its grain state, event stream and action cache are in a Redis
/// of the fixture's own; coordinator, worker and CLI export traces, metrics and logs to an <see cref="OtlpSink"/>, and
/// log at Debug level. The builds (<see cref="Builds"/>) run once, in order, so that every test sees all of them and
/// the leak search looks at what they all left.
/// </summary>
public sealed class TenantCredentialsFarmFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;
    private RedisServer? _redis;
    private OtlpSink? _otlp;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-creds-").FullName;

    /// <summary>The base image, in the anonymous registry.</summary>
    public string Base => $"{TestRegistries.Anonymous}/{_repository}/busybox:1";

    /// <summary>Where tenants push: a repository of the basic-auth registry.</summary>
    public string Private => $"{TestRegistries.Basic}/{_repository}";

    public CoordinatorProcess Coordinator => _coordinator!;

    public WorkerProcess Worker => _worker!;

    public RedisServer Redis => _redis!;

    internal OtlpSink Otlp => _otlp!;

    public string AcmeToken { get; private set; } = string.Empty;

    public string GlobexToken { get; private set; } = string.Empty;

    public string AdminToken { get; private set; } = string.Empty;

    /// <summary>A password that the registry refuses, passed with one of globex's builds.</summary>
    public string WrongPassword { get; } = "wrong-" + Guid.NewGuid().ToString("N");

    /// <summary>A password for a registry no build pushes to, in the Docker config of the user who passes credentials: it must never leave the CLI.</summary>
    public string DecoyPassword { get; } = "decoy-" + Guid.NewGuid().ToString("N");

    /// <summary>A registry no build pushes to (never contacted: the CLI only reads its entry, or rather must not).</summary>
    public const string DecoyRegistry = "registry.example.invalid:5000";

    /// <summary>The builds, run once by <see cref="InitializeAsync"/>.</summary>
    public FarmBuilds Builds { get; private set; } = null!;

    /// <summary>Every secret a build used or a user held, in the forms it could travel in.</summary>
    public IReadOnlyList<string> Secrets
    {
        get
        {
            var secrets = new List<string>();
            foreach (var (user, password) in new[] { (TestRegistries.BasicUser, TestRegistries.BasicPassword), (TestRegistries.BasicUser, WrongPassword), ("decoy", DecoyPassword) })
            {
                var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));
                secrets.AddRange([password, basic, basic.TrimEnd('='), basic.TrimEnd('=').Replace('+', '-').Replace('/', '_'), Convert.ToBase64String(Encoding.UTF8.GetBytes(password)).TrimEnd('=')]);
            }

            foreach (var registry in new[] { TestRegistries.Basic, DecoyRegistry })
            {
                foreach (var password in new[] { TestRegistries.BasicPassword, WrongPassword, DecoyPassword })
                {
                    // The header the CLI sends: base64url of {"HOST":{"username":"...","password":"..."}}.
                    var json = $"{{\"{registry}\":{{\"username\":\"{TestRegistries.BasicUser}\",\"password\":\"{password}\"}}}}";
                    secrets.Add(Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_'));
                }
            }

            return secrets;
        }
    }

    /// <summary>
    /// The CLI's environment: the coordinator, <paramref name="token"/>, a Docker config directory of the user's
    /// (<paramref name="dockerConfig"/>), telemetry to the sink.
    /// </summary>
    public Dictionary<string, string> Env(string? token, string dockerConfig) => new(_otlp!.Environment)
    {
        ["FARM_STATE_DIR"] = Path.Combine(Directory, "state"),
        ["DOCKER_CONFIG"] = dockerConfig,
        ["FARM_HOST"] = _coordinator?.Url ?? string.Empty,
        ["FARM_TOKEN"] = token ?? string.Empty,
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-creds-");
        _redis = await RedisServer.StartAsync();
        _otlp = new OtlpSink();

        var lines = new List<string> { "# tenants of the registry credentials test" };
        (AcmeToken, var acme) = await CoordinatorProcess.MintTokenAsync("acme");
        (GlobexToken, var globex) = await CoordinatorProcess.MintTokenAsync("globex");
        (AdminToken, var admin) = await CoordinatorProcess.MintTokenAsync("ops", "admin");
        lines.AddRange([acme, globex, admin]);
        var tokensFile = Path.Combine(Directory, "tokens");
        await File.WriteAllLinesAsync(tokensFile, lines);

        // Acme's credentials, as its operator configures them; the coordinator's own Docker config has the same
        // registry's: a build of globex must still push anonymously.
        var acmeAuth = DockerConfigWith(Path.Combine(Directory, "acme-registry"), (TestRegistries.Basic, TestRegistries.BasicUser, TestRegistries.BasicPassword));
        var farmOwn = Path.GetDirectoryName(DockerConfigWith(Path.Combine(Directory, "farm-docker"), (TestRegistries.Basic, TestRegistries.BasicUser, TestRegistries.BasicPassword)))!;

        var cluster = "farm-creds-" + Guid.NewGuid().ToString("N")[..10];
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{TestRegistries.Anonymous}/{_repository}/cache", Path.Combine(Directory, "coordinator"), new Dictionary<string, string>(_otlp.Environment)
        {
            ["Farm__Coordinator__Auth__TokensFile"] = tokensFile,
            ["Farm__Coordinator__Tenants__acme__RegistryAuthFile"] = acmeAuth,
            ["Farm__Coordinator__Redis"] = _redis.Configuration,
            ["Farm__Coordinator__ClusterId"] = cluster,
            ["Farm__Coordinator__ServiceId"] = cluster,
            ["DOCKER_CONFIG"] = farmOwn,
            ["Logging__LogLevel__Default"] = "Debug",
        });
        _worker = WorkerProcess.Start("creds-worker", Path.Combine(Directory, "w"), _vhost.Name, new Dictionary<string, string>(_otlp.Environment)
        {
            ["Logging__LogLevel__Default"] = "Debug",
        });

        var rootfs = BuildFixture.BusyboxRootfs(Directory);
        var nobody = Path.Combine(Directory, "docker-nobody");
        Ok(await FarmCli.RunAsync(Env(null, nobody), null, "import", rootfs, Base));
        Ok(await FarmCli.RunAsync(Env(null, nobody), null, "push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());

        Builds = await FarmBuilds.RunAsync(this);
    }

    /// <summary>A Docker config.json in <paramref name="directory"/> with the given entries; its path.</summary>
    public static string DockerConfigWith(string directory, params (string Registry, string User, string Password)[] entries)
    {
        System.IO.Directory.CreateDirectory(directory);
        var auths = string.Join(",", entries.Select(e => $"\"{e.Registry}\":{{\"auth\":\"{Convert.ToBase64String(Encoding.UTF8.GetBytes($"{e.User}:{e.Password}"))}\"}}"));
        var path = Path.Combine(directory, "config.json");
        File.WriteAllText(path, $"{{\"auths\":{{{auths}}}}}");
        return path;
    }

    /// <summary>An HTTP client of the coordinator that sends <paramref name="token"/>.</summary>
    public HttpClient Http(string? token) => Coordinator.Http(token);

    public string Diagnostics() => Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), ("worker", _worker?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_worker, _coordinator, _vhost, _redis);
        _otlp?.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }


    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}

/// <summary>One <c>farm build --push</c> and what the user saw.</summary>
public sealed record FarmBuild(string Name, string Image, string Marker, CliProcess.Result Result)
{
    /// <summary>The build's id, from its first rawjson event that names one.</summary>
    public string Id => Result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!)
        .Select(e => (string?)e["buildId"])
        .FirstOrDefault(b => b is not null) ?? throw new InvalidOperationException($"build {Name} printed no build id: {Result}");
}

/// <summary>
/// The builds of <see cref="TenantCredentialsFarmFixture"/>, each pushing to the basic-auth registry: acme with its
/// tenant's credentials; globex without any (refused); globex passing its user's own (<c>farm login</c>); globex passing
/// a password the registry refuses; globex building from acme's image in that registry (its pull refused).
/// </summary>
public sealed record FarmBuilds(FarmBuild Acme, FarmBuild GlobexAnonymous, FarmBuild GlobexPassed, FarmBuild GlobexWrong, FarmBuild GlobexPrivateBase)
{
    public IReadOnlyList<FarmBuild> All => [Acme, GlobexAnonymous, GlobexPassed, GlobexWrong, GlobexPrivateBase];

    internal static async Task<FarmBuilds> RunAsync(TenantCredentialsFarmFixture farm)
    {
        var empty = Path.Combine(farm.Directory, "docker-globex-empty");
        var loggedIn = Path.GetDirectoryName(TenantCredentialsFarmFixture.DockerConfigWith(
            Path.Combine(farm.Directory, "docker-globex"),
            (TestRegistries.Basic, TestRegistries.BasicUser, TestRegistries.BasicPassword),
            (TenantCredentialsFarmFixture.DecoyRegistry, "decoy", farm.DecoyPassword)))!;
        var wrong = Path.GetDirectoryName(TenantCredentialsFarmFixture.DockerConfigWith(
            Path.Combine(farm.Directory, "docker-globex-wrong"),
            (TestRegistries.Basic, TestRegistries.BasicUser, farm.WrongPassword)))!;

        // Acme's user has no credentials of their own: the tenant's on the farm push.
        var acme = await BuildAsync(farm, "acme", farm.AcmeToken, empty);
        var anonymous = await BuildAsync(farm, "globex-anonymous", farm.GlobexToken, empty);
        var passed = await BuildAsync(farm, "globex-passed", farm.GlobexToken, loggedIn);
        var refused = await BuildAsync(farm, "globex-wrong", farm.GlobexToken, wrong);
        // A base image in the private registry: pulled with globex's credentials (none), not the farm's.
        var privateBase = await BuildAsync(farm, "globex-private-base", farm.GlobexToken, empty, from: acme.Image);
        return new FarmBuilds(acme, anonymous, passed, refused, privateBase);
    }

    private static async Task<FarmBuild> BuildAsync(TenantCredentialsFarmFixture farm, string name, string token, string dockerConfig, string? from = null)
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Private}/{name}:{marker}";
        var context = System.IO.Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + name)).FullName;
        File.WriteAllText(Path.Combine(context, "Dockerfile"), $"""
            FROM {from ?? farm.Base}
            COPY msg.txt /msg.txt
            RUN echo "build-output {marker}"
            """);
        File.WriteAllText(Path.Combine(context, "msg.txt"), $"content of {name} {marker}\n");
        var result = await CliProcess.RunAsync(farm.Env(token, dockerConfig), TimeSpan.FromMinutes(5), null, ["build", "--progress", "rawjson", "--push", "-t", image, context]);
        return new FarmBuild(name, image, marker, result);
    }
}
