using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Tests;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker;

namespace Farm.Telemetry.Tests;

/// <summary>
/// A farm of processes exporting telemetry: <c>dotnet Farm.Coordinator.dll</c> and two <c>dotnet Farm.Worker.dll</c>
/// (each with its own <c>/metrics</c> port) on a RabbitMQ virtual host of this run, all exporting OTLP to a receiver
/// inside the test. Before the tests, the real CLI (<c>farm build --farm URL</c>, OTLP export on) makes one
/// multi-stage build, so every test can look at its trace, metrics and dashboard.
/// Needs infra/up.sh (registry, RabbitMQ), runc and busybox-static.
/// </summary>
public sealed class TelemetryFarmFixture : IAsyncLifetime
{
    /// <summary>Two independent stages (one job each, at once: one per worker), then a stage copying from both.</summary>
    public const string Dockerfile = """
        ARG BASE
        FROM ${BASE} AS left
        RUN echo left > /left && sleep 2
        FROM ${BASE} AS right
        RUN echo right > /right && sleep 2
        FROM ${BASE}
        COPY --from=left /left /left
        COPY --from=right /right /right
        COPY hello.txt /hello.txt
        """;

    private readonly string _work = Directory.CreateTempSubdirectory("farm-telemetry-").FullName;
    private CoordinatorProcess? _coordinator;
    private RabbitMqVirtualHost? _vhost;
    private Dictionary<string, string> _telemetry = [];
    private SubmitContext? _context;

    public LayerStoreFixture Store { get; } = new();

    public string VirtualHost => _vhost?.Name ?? throw new InvalidOperationException("The fixture is not initialised.");

    /// <summary>The RabbitMQ address of the farm's virtual host (<c>FARM_RABBITMQ</c> for <c>farm submit</c>).</summary>
    public string AmqpUrl => _vhost?.AmqpUrl ?? throw new InvalidOperationException("The fixture is not initialised.");

    /// <summary>The context directory of the fixture's build (holds <c>hello.txt</c>).</summary>
    public string ContextDirectory => Context.ContextDirectory;

    /// <summary>The Dockerfile of the fixture's build, written outside the context.</summary>
    public string DockerfilePath => Path.Combine(_work, "Dockerfile");

    /// <summary>The variables that make a process export OTLP to <see cref="Otlp"/>.</summary>
    public IReadOnlyDictionary<string, string> TelemetryEnvironment => _telemetry;

    public OtlpReceiver Otlp { get; private set; } = null!;

    public List<WorkerProcess> Workers { get; } = [];

    /// <summary>Each worker's <c>/metrics</c> port, by worker name.</summary>
    public Dictionary<string, int> WorkerMetricsPorts { get; } = [];

    public int CoordinatorPort { get; private set; }

    public HttpClient Api { get; private set; } = null!;

    public string BaseImage => Context.BaseImage;

    public string ContextDigest => Context.ContextDigest;

    public string ContextIndexDigest => Context.ContextIndexDigest;

    /// <summary>The build submitted before the tests.</summary>
    public Guid BuildId { get; private set; }

    /// <summary>The trace id <c>farm build</c> printed (its rawjson <c>TraceStarted</c> event).</summary>
    public string TraceId { get; private set; } = null!;

    /// <summary>What <c>farm build --farm URL --progress rawjson</c> printed.</summary>
    public CliProcess.Result Cli { get; private set; } = null!;

    /// <summary>GET /builds/{id} of that build once it ended.</summary>
    public JsonObject Status { get; private set; } = null!;

    private SubmitContext Context => _context ?? throw new InvalidOperationException("The fixture is not initialised.");

    public string Tag { get; } = $"{TestRegistries.Anonymous}/test-{Guid.NewGuid():N}/telemetry:1";

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-telemetry-");
        Otlp = await OtlpReceiver.StartAsync();
        var telemetry = _telemetry = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Otlp.Endpoint.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            // Spans leave within a fraction of a second instead of the default five.
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        };

        CoordinatorPort = FreePorts.Tcp();
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, CoordinatorPort, Store.StoreAddress, Path.Combine(Store.Root, "coordinator"), new Dictionary<string, string>(telemetry)
        {
            ["Farm__Telemetry__SampleInterval"] = "00:00:01",
            // The dashboard test's gated step polls this machine's loopback (RUN --network=host).
            ["Farm__Builds__Entitlements__0"] = "network.host",
            // Long: a worker that leaves within a test is gone by its stopping heartbeat, not by this timeout.
            ["Farm__Telemetry__WorkerTimeout"] = "00:10:00",
        });
        Api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{CoordinatorPort}/"), Timeout = TimeSpan.FromSeconds(30) };
        foreach (var name in new[] { "worker-a", "worker-b" })
        {
            var port = FreePorts.Tcp();
            WorkerMetricsPorts[name] = port;
            Workers.Add(WorkerProcess.Start(name, Path.Combine(Store.Root, name[^1..]), _vhost.Name, new Dictionary<string, string>(telemetry)
            {
                ["Farm__Worker__MetricsPort"] = port.ToString(CultureInfo.InvariantCulture),
                ["Farm__Worker__HeartbeatInterval"] = "00:00:01",
            }));
        }

        // A busybox image in the test registry and the context (tar and index) in the cache store, as the CLI uploads them.
        _context = await SubmitContext.CreateAsync(Store.StoreAddress, Store.BaseLayer, "hello from the telemetry test\n");
        await Wait.UntilAsync(async () => await _coordinator.HealthAsync() is >= 200 and <= 299, TimeSpan.FromSeconds(90), () => "the coordinator process to answer /healthz" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync(WorkerHosting.QueueName) == 2, TimeSpan.FromSeconds(60),
            () => "both workers to consume from " + WorkerHosting.QueueName + Diagnostics());

        // The build, made by the real CLI against the coordinator, exporting its own spans to the same receiver.
        var dockerfile = DockerfilePath;
        await File.WriteAllTextAsync(dockerfile, Dockerfile);
        Cli = await CliProcess.RunAsync(
            new Dictionary<string, string>(telemetry) { ["FARM_STATE_DIR"] = Path.Combine(_work, "cli-state") },
            TimeSpan.FromMinutes(4),
            "build", "--farm", $"http://127.0.0.1:{CoordinatorPort}", "-f", dockerfile, "--build-arg", $"BASE={BaseImage}", "-t", Tag, "--push", "--progress", "rawjson", ContextDirectory);
        Assert.True(Cli.ExitCode == 0, "farm build: " + Cli + Diagnostics());
        var events = Cli.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        TraceId = (string?)events.FirstOrDefault(e => (string?)e["type"] == "TraceStarted")?["traceId"]
            ?? throw new InvalidOperationException("farm build --progress rawjson printed no TraceStarted event with OTEL_EXPORTER_OTLP_ENDPOINT set: " + Cli);
        BuildId = Guid.Parse((string)events.First(e => e["buildId"] is not null)["buildId"]!);
        Status = await WaitEndedAsync(BuildId);
    }

    /// <summary>Posts a build (the busybox base as BASE, the uploaded context) and returns its id.</summary>
    public async Task<Guid> SubmitAsync(string dockerfile, string tag, string? traceParent = null, IReadOnlyList<string>? entitlements = null)
    {
        var body = Context.SubmitJson(tag, dockerfile: dockerfile);
        body["entitlements"] = new JsonArray([.. (entitlements ?? []).Select(e => (JsonNode?)e)]);
        using var request = new HttpRequestMessage(HttpMethod.Post, "builds") { Content = JsonContent.Create(body) };
        if (traceParent is not null)
        {
            request.Headers.Add("traceparent", traceParent);
        }

        using var response = await Api.SendAsync(request);
        var answer = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(response.IsSuccessStatusCode, $"POST /builds: {(int)response.StatusCode} {answer?.ToJsonString()}" + Diagnostics());
        return Guid.Parse((string)answer!["buildId"]!);
    }

    /// <summary>Starts one more worker with the farm's telemetry settings (the caller disposes it).</summary>
    /// <summary>Consumers RabbitMQ counts on a queue of the fixture's virtual host.</summary>
    public Task<int> ConsumersAsync(string queue) => (_vhost ?? throw new InvalidOperationException("The fixture is not initialised.")).ConsumersAsync(queue);

    public WorkerProcess StartWorker(string name) =>
        WorkerProcess.Start(name, Path.Combine(Store.Root, name[^1..]), VirtualHost, new Dictionary<string, string>(_telemetry)
        {
            ["Farm__Worker__HeartbeatInterval"] = "00:00:01",
        });

    /// <summary>Waits until the build succeeded or failed and returns its status.</summary>
    public async Task<JsonObject> WaitEndedAsync(Guid buildId)
    {
        JsonObject? status = null;
        await Wait.UntilAsync(
            async () =>
            {
                using var response = await Api.GetAsync($"builds/{buildId}");
                status = response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonObject>() : null;
                return (string?)status?["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromMinutes(4),
            () => $"build {buildId} to end; last status: {status?.ToJsonString() ?? "(unknown id)"}" + Diagnostics());
        return status!;
    }

    public string Diagnostics() => Teardown.Diagnostics(_coordinator, Workers);

    public async Task DisposeAsync()
    {
        Api?.Dispose();
        await Teardown.InOrderAsync([.. Workers, _coordinator, Otlp, _vhost]);
        _context?.Dispose();
        Directory.Delete(_work, recursive: true);
        await Store.DisposeAsync();
    }
}
