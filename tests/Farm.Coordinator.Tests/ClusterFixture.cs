using System.Net.Http.Headers;
using System.Text.Json;
using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Hosting;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Farm.Coordinator.Tests;

/// <summary>
/// Two worker processes (<c>dotnet Farm.Worker.dll</c>, one slot each) and the coordinator's silo in the test
/// process, all on a RabbitMQ virtual host made for this run (after Farm.Worker.Tests' WorkerClusterFixture).
/// RabbitMQ with its management plugin and the registry must run: infra/up.sh.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private RabbitMqVirtualHost? _vhost;
    private IHost? _host;

    public ClusterFixture()
    {
    }

    public string VirtualHost => (_vhost ?? throw new InvalidOperationException("The fixture is not initialised.")).Name;

    public LayerStoreFixture Store { get; } = new();

    public List<WorkerProcess> Workers { get; } = [];

    public IGrainFactory Grains => (_host ?? throw new InvalidOperationException("The fixture is not initialised.")).Services.GetRequiredService<IGrainFactory>();

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-test-");

        var builder = Host.CreateApplicationBuilder();
        builder.Configuration[RabbitMqOptions.UrlVariable] = $"amqp://guest:guest@127.0.0.1:5672/{VirtualHost}";
        builder.AddFarmCoordinator(o =>
        {
            o.Transport = FarmTransport.RabbitMq;
            o.SiloPort = FreePorts.Tcp();
            o.GatewayPort = FreePorts.Tcp();
            o.JobTimeout = TimeSpan.FromMinutes(5);
        });
        _host = builder.Build();
        await _host.StartAsync();

        Workers.Add(WorkerProcess.Start("worker-a", Path.Combine(Store.Root, "wa"), VirtualHost));
        Workers.Add(WorkerProcess.Start("worker-b", Path.Combine(Store.Root, "wb"), VirtualHost));
        // A job published before a worker bound the queue would be dropped by the exchange, or all go to one worker.
        await Wait.UntilAsync(async () => await ConsumersAsync(WorkerHosting.QueueName) == 2, TimeSpan.FromSeconds(60),
            () => "both workers to consume from " + WorkerHosting.QueueName + Diagnostics());
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

        if (_host is not null)
        {
            await _host.StopAsync();
            _host.Dispose();
        }

        if (_vhost is not null)
        {
            await _vhost.DisposeAsync();
        }
        await Store.DisposeAsync();
    }
}
