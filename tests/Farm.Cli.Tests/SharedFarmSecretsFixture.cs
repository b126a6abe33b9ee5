using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A shared farm for build secrets, as processes: a coordinator serving HTTPS (a throwaway CA) with tokens for tenants
/// <c>acme</c> and <c>globex</c> and an admin, its grain state and event stream in a Redis of the fixture's own; two
/// workers, each trusting the CA for the coordinator's API (<c>Farm:Worker:CoordinatorCaPath</c>); the host network
/// granted, so that a step can wait on the test (<see cref="LoopbackGate"/>); every process at Debug level exporting
/// telemetry to an <see cref="OtlpSink"/>. A queue of the test's own is bound to the jobs' exchange, as an eavesdropper
/// on RabbitMQ would be: <see cref="JobsAsync"/> reads the jobs the coordinator published, with their credentials.
/// </summary>
public sealed class SharedFarmSecretsFixture : IAsyncLifetime
{
    /// <summary>The test's copy of every job: bound to MassTransit's exchange of <c>BuildLayer</c>.</summary>
    public const string CopyQueue = "test-job-copies";

    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private readonly List<JsonObject> _jobs = [];
    private CoordinatorProcess? _coordinator;
    private RabbitMqVirtualHost? _vhost;
    private RedisServer? _redis;
    private OtlpSink? _otlp;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-secrets-").FullName;

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public string Base => $"{Repository}/busybox:1";

    public CoordinatorProcess Coordinator => _coordinator!;

    public IReadOnlyList<WorkerProcess> Workers { get; private set; } = [];

    public RabbitMqVirtualHost VirtualHost => _vhost!;

    public RedisServer Redis => _redis!;

    internal OtlpSink Otlp => _otlp!;

    public TestCertificates Certificates { get; private set; } = null!;

    public string AcmeToken { get; private set; } = string.Empty;

    public string GlobexToken { get; private set; } = string.Empty;

    public string AdminToken { get; private set; } = string.Empty;

    /// <summary>The CLI's environment for <paramref name="token"/>: the coordinator over HTTPS, its CA, telemetry to the sink.</summary>
    public Dictionary<string, string> Env(string? token) => new(_otlp!.Environment)
    {
        ["FARM_STATE_DIR"] = Path.Combine(Directory, "state"),
        ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
        ["FARM_HOST"] = _coordinator?.Url ?? string.Empty,
        ["FARM_CA"] = Certificates.CaPath,
        ["FARM_TOKEN"] = token ?? string.Empty,
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-secrets-");
        _redis = await RedisServer.StartAsync();
        _otlp = new OtlpSink();
        Certificates = TestCertificates.Create(Path.Combine(Directory, "tls"));

        (AcmeToken, var acme) = await CoordinatorProcess.MintTokenAsync("acme");
        (GlobexToken, var globex) = await CoordinatorProcess.MintTokenAsync("globex");
        (AdminToken, var admin) = await CoordinatorProcess.MintTokenAsync("ops", "admin");
        var tokensFile = Path.Combine(Directory, "tokens");
        await File.WriteAllLinesAsync(tokensFile, ["# tenants of the build secrets test", acme, globex, admin]);

        var cluster = "farm-secrets-" + Guid.NewGuid().ToString("N")[..10];
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, "coordinator"), new Dictionary<string, string>(_otlp.Environment)
        {
            ["Farm__Coordinator__Auth__TokensFile"] = tokensFile,
            ["Farm__Coordinator__Tls__CertificatePath"] = Certificates.CertificatePath,
            ["Farm__Coordinator__Tls__KeyPath"] = Certificates.KeyPath,
            ["Farm__Coordinator__Redis"] = _redis.Configuration,
            ["Farm__Coordinator__ClusterId"] = cluster,
            ["Farm__Coordinator__ServiceId"] = cluster,
            ["Farm__Builds__Entitlements__0"] = "network.host",
            ["Logging__LogLevel__Default"] = "Debug",
        });
        Workers = [StartWorker("secrets-worker-1"), StartWorker("secrets-worker-2")];

        var rootfs = BuildFixture.BusyboxRootfs(Directory);
        Ok(await FarmCli.RunAsync(Env(null), null, "import", rootfs, Base));
        Ok(await FarmCli.RunAsync(Env(null), null, "push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 2, TimeSpan.FromSeconds(60), () => "both workers to consume farm-build-layer" + Diagnostics());

        // The workers' endpoint declared MassTransit's exchange of BuildLayer: the copy queue gets every job published.
        await ManagementAsync(HttpMethod.Put, $"queues/{_vhost.Name}/{CopyQueue}", new { durable = false, auto_delete = false });
        await ManagementAsync(HttpMethod.Post, $"bindings/{_vhost.Name}/e/{Uri.EscapeDataString("Farm.Contracts:BuildLayer")}/q/{CopyQueue}", new { routing_key = string.Empty });
    }

    private WorkerProcess StartWorker(string name) => WorkerProcess.Start(name, Path.Combine(Directory, name), _vhost!.Name, new Dictionary<string, string>(_otlp!.Environment)
    {
        ["Farm__Worker__CoordinatorCaPath"] = Certificates.CaPath,
        ["Logging__LogLevel__Default"] = "Debug",
    });

    /// <summary>Every job published so far (the <c>BuildLayer</c> messages, taken off the copy queue and kept here).</summary>
    public async Task<IReadOnlyList<JsonObject>> JobsAsync()
    {
        foreach (var message in await MessagesAsync(CopyQueue, requeue: false))
        {
            if (JsonNode.Parse(message)?["message"] is JsonObject job)
            {
                lock (_jobs)
                {
                    _jobs.Add(job);
                }
            }
        }

        lock (_jobs)
        {
            return [.. _jobs];
        }
    }

    /// <summary>The payloads of the messages in <paramref name="queue"/>: left there (<paramref name="requeue"/>) or taken.</summary>
    public async Task<IReadOnlyList<string>> MessagesAsync(string queue, bool requeue)
    {
        using var response = await ManagementAsync(HttpMethod.Post, $"queues/{_vhost!.Name}/{Uri.EscapeDataString(queue)}/get",
            new { count = 10_000, ackmode = requeue ? "ack_requeue_true" : "ack_requeue_false", encoding = "auto", truncate = 50_000_000 });
        var messages = await response.Content.ReadFromJsonAsync<JsonArray>() ?? [];
        return [.. messages.Select(m => (string?)m?["payload"] ?? string.Empty)];
    }

    /// <summary>
    /// The names of the queues of the virtual host that RabbitMQ keeps messages in for anyone to read later: every one but
    /// the exclusive queues of MassTransit's temporary endpoints (a process's heartbeats and cancellations), which only
    /// their own connection may read and which go with it.
    /// </summary>
    public async Task<IReadOnlyList<string>> QueuesAsync()
    {
        using var response = await ManagementAsync(HttpMethod.Get, $"queues/{_vhost!.Name}", null);
        var queues = await response.Content.ReadFromJsonAsync<JsonArray>() ?? [];
        return [.. queues.Where(q => q?["exclusive"]?.GetValue<bool>() != true).Select(q => (string?)q?["name"] ?? string.Empty).Where(n => n.Length > 0)];
    }

    private async Task<HttpResponseMessage> ManagementAsync(HttpMethod method, string path, object? body)
    {
        using var request = new HttpRequestMessage(method, RabbitMqVirtualHost.ManagementUrl + path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        }

        var response = await _vhost!.Management.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"RabbitMQ's management API answered {method} {path} with {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return response;
    }

    /// <summary>An HTTP client of the coordinator that trusts the test CA and sends <paramref name="token"/> (null: none).</summary>
    public HttpClient Http(string? token) => Coordinator.Http(token, Certificates.CaPath);

    public string Diagnostics() => Teardown.Diagnostics(_coordinator, Workers);

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync([.. Workers, _coordinator, _vhost, _redis]);
        _otlp?.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
