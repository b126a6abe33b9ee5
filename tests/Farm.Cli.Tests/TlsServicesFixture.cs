using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// The farm's own services secured, as processes: a RabbitMQ node of the test's own with only an AMQPS listener, a
/// Redis with TLS only and an ACL user (the <c>default</c> user off), both with certificates of one throwaway CA; a
/// coordinator keeping its cluster state in that Redis (<c>user=</c>, <c>password=</c>, <c>Farm:Coordinator:RedisCaPath</c>)
/// and one worker, both on <c>amqps://</c> with <c>FARM_RABBITMQ_CA</c>; a busybox base in the anonymous registry. The
/// shared RabbitMQ and Redis of infra/up.sh are not used, so nothing here reconfigures them.
/// </summary>
public sealed class TlsServicesFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqNode? _rabbit;
    private RedisServer? _redis;

    public const string WorkerName = "tls-worker";

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-tls-services-").FullName;

    public string Base => $"{Repository}/busybox:1";

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public TestCertificates Certificates { get; private set; } = null!;

    public CoordinatorProcess Coordinator => _coordinator!;

    public RabbitMqNode RabbitMq => _rabbit!;

    public RedisServer Redis => _redis!;

    /// <summary>The Redis ACL user's password: it must never appear in what the farm prints.</summary>
    public string RedisPassword { get; } = "redis-" + Guid.NewGuid().ToString("N");

    /// <summary>The CLI's environment: the coordinator's API (plain HTTP on loopback), RabbitMQ over AMQPS and its CA.</summary>
    public Dictionary<string, string> Env() => new(FarmCli.ClientEnv(Directory, _coordinator?.Url, _rabbit?.AmqpsUrl ?? string.Empty))
    {
        ["FARM_RABBITMQ_CA"] = Certificates.CaPath,
    };

    /// <summary>The coordinator's environment for this farm's services; <paramref name="redis"/> replaces its Redis connection string.</summary>
    public Dictionary<string, string> CoordinatorEnvironment(string? redis = null) => new()
    {
        ["FARM_RABBITMQ_CA"] = Certificates.CaPath,
        ["Farm__Coordinator__Redis"] = redis ?? Redis.Configuration,
        ["Farm__Coordinator__RedisCaPath"] = Certificates.CaPath,
        ["Farm__Coordinator__ClusterId"] = "tls-" + Guid.NewGuid().ToString("N")[..8],
        // Whatever it logs, down to Debug (options, connections), is checked for the services' passwords.
        ["Logging__LogLevel__Default"] = "Debug",
    };

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        Certificates = TestCertificates.Create(Path.Combine(Directory, "tls"));
        var rabbit = RabbitMqNode.StartAsync(Certificates);
        var redis = RedisServer.StartTlsAsync(Certificates, "farm-coordinator", RedisPassword);
        try
        {
            _rabbit = await rabbit;
        }
        finally
        {
            _redis = await redis;
        }

        _coordinator = CoordinatorProcess.Start(_rabbit.AmqpsUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, "coordinator"), CoordinatorEnvironment());
        _worker = WorkerProcess.Start(WorkerName, Path.Combine(Directory, "w"), "unused", new Dictionary<string, string>
        {
            ["FARM_RABBITMQ"] = _rabbit.AmqpsUrl,
            ["FARM_RABBITMQ_CA"] = Certificates.CaPath,
        });

        var rootfs = BuildFixture.BusyboxRootfs(Directory);
        Ok(await FarmCli.RunAsync(Env(), null, "import", rootfs, Base));
        Ok(await FarmCli.RunAsync(Env(), null, "push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(120));
        // The worker's heartbeats reach the coordinator over AMQPS: then it consumes jobs too.
        using var http = Http();
        await Wait.UntilAsync(
            async () =>
            {
                using var response = await http.GetAsync("api/workers");
                return response.IsSuccessStatusCode && (await response.Content.ReadAsStringAsync()).Contains(WorkerName, StringComparison.Ordinal);
            },
            TimeSpan.FromSeconds(90),
            () => "the worker to report to the coordinator over AMQPS" + Diagnostics());
    }

    public HttpClient Http() => new() { BaseAddress = new Uri(Coordinator.Url + "/"), Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The build's status once it ended (succeeded or failed).</summary>
    public async Task<JsonNode> EndedAsync(string id)
    {
        using var http = Http();
        JsonNode? status = null;
        await Wait.UntilAsync(
            async () =>
            {
                using var response = await http.GetAsync($"builds/{id}");
                status = response.IsSuccessStatusCode ? JsonNode.Parse(await response.Content.ReadAsStringAsync()) : null;
                return (string?)status?["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromMinutes(3),
            () => $"build {id} to end; last status: {status?.ToJsonString()}" + Diagnostics());
        return status!;
    }

    public string Diagnostics() =>
        Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), ("worker", _worker?.OutputTail()), ("rabbitmq", _rabbit?.OutputTail()), ("redis", _redis?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_worker, _coordinator, _rabbit, _redis);
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
