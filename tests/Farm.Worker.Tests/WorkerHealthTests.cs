using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Farm.Contracts;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker.Hosting;
using MassTransit;

namespace Farm.Worker.Tests;

/// <summary>
/// A worker process's probes as a kubelet meets them: <c>/livez</c> and <c>/readyz</c> on <c>Farm:Worker:HealthPort</c>;
/// ready once it consumes, not ready (but alive) while it drains a running job after SIGTERM, and a taken port refused
/// at start with FARM3050. RabbitMQ (with its management plugin), the registry and runc must run: infra/up.sh.
/// </summary>
public sealed class WorkerHealthTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private readonly ExecutorFixture _store = new();
    private readonly ConcurrentQueue<LayerBuilt> _built = new();
    private readonly ConcurrentQueue<StepLogLine> _logs = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private RabbitMqVirtualHost? _vhost;
    private IBusControl? _bus;

    public async Task InitializeAsync()
    {
        await _store.InitializeAsync();
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-test-health-");
        _bus = MassTransit.Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host("127.0.0.1", 5672, _vhost.Name, h =>
            {
                h.Username("guest");
                h.Password("guest");
            });
            cfg.ReceiveEndpoint("farm-test-events", e =>
            {
                e.Handler<LayerBuilt>(c =>
                {
                    _built.Enqueue(c.Message);
                    return Task.CompletedTask;
                });
                e.Handler<StepLogLine>(c =>
                {
                    _logs.Enqueue(c.Message);
                    return Task.CompletedTask;
                });
            });
        });
        using var start = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _bus.StartAsync(start.Token);
    }

    [Fact]
    public async Task A_worker_is_ready_once_it_consumes_and_stays_alive_but_not_ready_while_it_drains_a_job_after_SIGTERM()
    {
        var healthPort = FreePorts.Tcp();
        await using var worker = WorkerProcess.Start("worker-health", Path.Combine(_store.Root, "wh"), _vhost!.Name, new Dictionary<string, string>
        {
            ["Farm__Worker__HealthPort"] = healthPort.ToString(CultureInfo.InvariantCulture),
            // Long enough that the drain below is still going on whatever the machine's load; the step ends it.
            ["Farm__Worker__StopGrace"] = "00:05:00",
        });
        var health = new Uri($"http://127.0.0.1:{healthPort.ToString(CultureInfo.InvariantCulture)}");

        await Wait.UntilAsync(async () => (await ProbeAsync(health, WorkerHealthEndpoint.ReadinessPath)).Status == HttpStatusCode.OK, Bound,
            () => $"{WorkerHealthEndpoint.ReadinessPath} to answer 200 once the worker consumes{Environment.NewLine}{worker.OutputTail()}");
        var live = await ProbeAsync(health, WorkerHealthEndpoint.LivenessPath);
        Assert.Equal(HttpStatusCode.OK, live.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await ProbeAsync(health, "/metrics")).Status);

        // A step that waits until the test answers on a loopback port: it is running when SIGTERM comes.
        var gate = FreePorts.Tcp();
        var job = _store.Job(ExecutorFixture.Run(
            $"echo started; until wget -q -O /dev/null http://127.0.0.1:{gate}/; do sleep 0.2; done; touch /done",
            r => r with { Network = "host" }));
        await _bus!.Publish(job);
        await Wait.UntilAsync(() => _logs.Any(l => l.JobId == job.JobId && l.Line == "started"), Bound,
            () => $"the step to print 'started'{Environment.NewLine}{worker.OutputTail()}");

        await Tool.RunAsync("kill", "-TERM", worker.Id.ToString(CultureInfo.InvariantCulture));
        (HttpStatusCode Status, string Body) ready = default;
        await Wait.UntilAsync(async () => (ready = await ProbeAsync(health, WorkerHealthEndpoint.ReadinessPath)).Status == HttpStatusCode.ServiceUnavailable, Bound,
            () => $"{WorkerHealthEndpoint.ReadinessPath} to answer 503 while the worker drains; last {ready.Status} {ready.Body}{Environment.NewLine}{worker.OutputTail()}");
        Assert.Contains("draining", ready.Body, StringComparison.Ordinal);
        // Still alive: a liveness probe failing now would have the kubelet kill the job it is finishing.
        Assert.Equal(HttpStatusCode.OK, (await ProbeAsync(health, WorkerHealthEndpoint.LivenessPath)).Status);
        Assert.False(worker.HasExited);

        // The drain ends as it should: the job finishes on this worker within StopGrace, then the process exits.
        await LoopbackGate.AnsweringAsync(gate, () => Wait.UntilAsync(() => _built.Any(b => b.JobId == job.JobId), Bound,
            () => $"the draining worker to finish its job{Environment.NewLine}{worker.OutputTail()}"));
        Assert.Equal("worker-health", Assert.Single(_built, b => b.JobId == job.JobId).Worker);
        await Wait.UntilAsync(() => worker.HasExited, Bound, () => $"the worker to exit after its drain{Environment.NewLine}{worker.OutputTail()}");
    }

    [Fact]
    public async Task A_worker_that_cannot_reach_rabbitmq_is_alive_but_not_ready_and_says_why()
    {
        var healthPort = FreePorts.Tcp();
        var closed = FreePorts.Tcp(); // nothing listens there: the bus keeps trying
        await using var worker = WorkerProcess.Start("worker-health-nobus", Path.Combine(_store.Root, "wn"), _vhost!.Name, new Dictionary<string, string>
        {
            ["Farm__Worker__HealthPort"] = healthPort.ToString(CultureInfo.InvariantCulture),
            ["FARM_RABBITMQ"] = $"amqp://guest:guest@127.0.0.1:{closed.ToString(CultureInfo.InvariantCulture)}/",
        });
        var health = new Uri($"http://127.0.0.1:{healthPort.ToString(CultureInfo.InvariantCulture)}");

        (HttpStatusCode Status, string Body) ready = default;
        await Wait.UntilAsync(async () => (ready = await ProbeAsync(health, WorkerHealthEndpoint.ReadinessPath)).Body.Contains("bus is not connected", StringComparison.Ordinal), Bound,
            () => $"{WorkerHealthEndpoint.ReadinessPath} to say the bus is not connected once recovery ran; last {ready.Status} {ready.Body}{Environment.NewLine}{worker.OutputTail()}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Status);
        Assert.Equal((HttpStatusCode.OK, "alive\n"), await ProbeAsync(health, WorkerHealthEndpoint.LivenessPath));
        // The URL's password never shows in an answer anyone on the pod network can read.
        Assert.DoesNotContain("guest", ready.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_worker_whose_health_port_is_taken_stops_at_start_with_FARM3050()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        await using var worker = WorkerProcess.Start("worker-health-taken", Path.Combine(_store.Root, "wt"), _vhost!.Name, new Dictionary<string, string>
        {
            ["Farm__Worker__HealthPort"] = port.ToString(CultureInfo.InvariantCulture),
        });

        await Wait.UntilAsync(() => worker.HasExited, Bound, () => $"the worker to stop when port {port} is taken{Environment.NewLine}{worker.OutputTail()}");
        Assert.Contains($"FARM3050: The worker's health endpoint cannot listen on 127.0.0.1:{port}", worker.Output(), StringComparison.Ordinal);
        Assert.Contains("Farm:Worker:HealthPort", worker.Output(), StringComparison.Ordinal);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_bus is not null)
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _bus.StopAsync(stop.Token);
        }

        if (_vhost is not null)
        {
            await _vhost.DisposeAsync();
        }

        await _store.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, string Body)> ProbeAsync(Uri health, string path)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri(health, path));
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (0, e.Message);
        }
    }
}
