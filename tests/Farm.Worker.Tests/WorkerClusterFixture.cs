using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Farm.Contracts;
using Farm.Testing;
using MassTransit;

namespace Farm.Worker.Tests;

/// <summary>
/// Two worker processes (<c>dotnet Farm.Worker.dll</c>, one slot each, own state directories) on a RabbitMQ
/// virtual host made for this test run, and a test bus on the same virtual host that publishes jobs and collects
/// the workers' events. RabbitMQ (with its management plugin) and the registry must run: infra/up.sh.
/// </summary>
public sealed class WorkerClusterFixture : IAsyncLifetime
{
    private const string Management = "http://127.0.0.1:15672/api/";
    private readonly HttpClient _management = new() { Timeout = TimeSpan.FromSeconds(10) };
    private IBusControl? _bus;

    public WorkerClusterFixture()
    {
        VirtualHost = "farm-test-" + Guid.NewGuid().ToString("N")[..10];
        _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.ASCII.GetBytes("guest:guest")));
    }

    public string VirtualHost { get; }

    /// <summary>The registry repository and busybox base layer the jobs build on.</summary>
    public ExecutorFixture Store { get; } = new();

    public List<WorkerProcess> Workers { get; } = [];

    public ConcurrentQueue<LayerBuilt> Built { get; } = new();

    public ConcurrentQueue<LayerBuildFailed> Failed { get; } = new();

    public ConcurrentQueue<StepLogLine> Logs { get; } = new();

    public IBus Bus => _bus ?? throw new InvalidOperationException("The fixture is not initialised.");

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        await CreateVirtualHostAsync();

        _bus = MassTransit.Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host("127.0.0.1", 5672, VirtualHost, h =>
            {
                h.Username("guest");
                h.Password("guest");
            });
            cfg.ReceiveEndpoint("farm-test-events", e =>
            {
                e.Handler<LayerBuilt>(c =>
                {
                    Built.Enqueue(c.Message);
                    return Task.CompletedTask;
                });
                e.Handler<LayerBuildFailed>(c =>
                {
                    Failed.Enqueue(c.Message);
                    return Task.CompletedTask;
                });
                e.Handler<StepLogLine>(c =>
                {
                    Logs.Enqueue(c.Message);
                    return Task.CompletedTask;
                });
            });
        });
        await _bus.StartAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        Workers.Add(WorkerProcess.Start("worker-a", Path.Combine(Store.Root, "wa"), VirtualHost));
        Workers.Add(WorkerProcess.Start("worker-b", Path.Combine(Store.Root, "wb"), VirtualHost));
        // A job published before a worker bound the queue would be dropped by the exchange.
        await Wait.UntilAsync(async () => await ConsumersAsync(WorkerHosting.QueueName) == 2, TimeSpan.FromSeconds(60),
            () => "both workers to consume from " + WorkerHosting.QueueName + Diagnostics());
    }

    /// <summary>Starts a dead worker again with its name and state directory, and waits until it consumes.</summary>
    public async Task<WorkerProcess> RestartAsync(WorkerProcess dead)
    {
        var index = Workers.IndexOf(dead);
        // Only stop it: what the dead process left is for the new one's recovery to remove.
        await dead.StopAsync();
        var worker = WorkerProcess.Start(dead.Name, dead.StateDirectory, VirtualHost);
        Workers[index] = worker;
        // The management API's consumer count lags by seconds and still counts the dead connection: wait for the
        // bus to start, which the worker's recovery precedes.
        await Wait.UntilAsync(() => Task.FromResult(worker.OutputTail().Contains("Bus started", StringComparison.Ordinal)), TimeSpan.FromSeconds(60),
            () => $"{dead.Name} to start its bus again after its restart" + Diagnostics());
        return worker;
    }

    /// <summary>Consumers RabbitMQ counts on a queue of the test's virtual host (0 when the queue does not exist yet).</summary>
    public async Task<int> ConsumersAsync(string queue)
    {
        using var response = await _management.GetAsync($"{Management}queues/{Uri.EscapeDataString(VirtualHost)}/{queue}");
        if (!response.IsSuccessStatusCode)
        {
            return 0;
        }

        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.TryGetProperty("consumers", out var c) ? c.GetInt32() : 0;
    }

    public string Diagnostics() =>
        string.Concat(Workers.Select(w => $"{Environment.NewLine}--- {w.Name} ({(w.HasExited ? "exited" : "running")}):{Environment.NewLine}{w.OutputTail()}"));

    private async Task CreateVirtualHostAsync()
    {
        try
        {
            using var created = await _management.PutAsync($"{Management}vhosts/{VirtualHost}", null);
            created.EnsureSuccessStatusCode();
            using var permissions = await _management.PutAsync(
                $"{Management}permissions/{VirtualHost}/guest",
                new StringContent("""{"configure":".*","write":".*","read":".*"}""", Encoding.UTF8, "application/json"));
            permissions.EnsureSuccessStatusCode();
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException(
                "RabbitMQ's management API at 127.0.0.1:15672 (guest/guest) did not answer: start RabbitMQ with infra/up.sh (or infra/rabbitmq.sh start).", e);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var worker in Workers)
        {
            await worker.DisposeAsync();
        }

        if (_bus is not null)
        {
            await _bus.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        }

        try
        {
            using var _ = await _management.DeleteAsync($"{Management}vhosts/{VirtualHost}");
        }
        catch (HttpRequestException)
        {
            // The vhost only holds this run's queues; a missing RabbitMQ already failed the tests.
        }

        _management.Dispose();
        await Store.DisposeAsync();
    }
}
