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
    private RabbitMqVirtualHost? _vhost;
    private IBusControl? _bus;

    public WorkerClusterFixture()
    {
    }

    public string VirtualHost => (_vhost ?? throw new InvalidOperationException("The fixture is not initialised.")).Name;

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
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-test-");

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
    public Task<int> ConsumersAsync(string queue) => (_vhost ?? throw new InvalidOperationException("The fixture is not initialised.")).ConsumersAsync(queue);

    public string Diagnostics() =>
        string.Concat(Workers.Select(w => $"{Environment.NewLine}--- {w.Name} ({(w.HasExited ? "exited" : "running")}):{Environment.NewLine}{w.OutputTail()}"));

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

        if (_vhost is not null)
        {
            await _vhost.DisposeAsync();
        }
        await Store.DisposeAsync();
    }
}
