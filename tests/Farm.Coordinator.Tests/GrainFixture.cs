using System.Collections.Concurrent;
using Farm.Contracts;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Grains;
using Farm.Coordinator.Hosting;
using Farm.Oci.Net;
using Farm.Worker;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The embedded farm in the test process: a localhost silo on free ports, MassTransit's in-memory bus, and the real
/// worker (AddFarmWorker, two slots) running jobs with runc against a busybox base in the test registry. Every
/// <see cref="BuildLayer"/> the grains publish is recorded, to count jobs.
/// </summary>
public sealed class GrainFixture : IAsyncLifetime
{
    private IHost? _host;

    public LayerStoreFixture Store { get; } = new();

    /// <summary>Every job published on the bus, in order.</summary>
    public ConcurrentQueue<BuildLayer> Published { get; } = new();

    /// <summary>Called before each <see cref="BuildLayer"/> is sent: tests inject faults here.</summary>
    public Action<BuildLayer>? BeforePublish { get; set; }

    public IServiceProvider Services => _host?.Services ?? throw new InvalidOperationException("The fixture is not initialised.");

    public IGrainFactory Grains => Services.GetRequiredService<IGrainFactory>();

    public BuildLogHub Logs => Services.GetRequiredService<BuildLogHub>();

    public int MaxAttempts => 3;

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        // The one composition every host uses, with the worker in this process on the in-memory bus.
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Farm:Worker:Name"] = "embedded",
            ["Farm:Worker:StateDirectory"] = Path.Combine(Store.Root, "w"),
            ["Farm:Worker:Slots"] = "2",
        });
        builder.AddFarmCoordinator(o =>
        {
            o.Transport = FarmTransport.InMemory;
            o.InProcessWorker = true;
            o.SiloPort = FreePorts.Tcp();
            o.GatewayPort = FreePorts.Tcp();
            o.MaxAttempts = MaxAttempts;
            o.JobTimeout = TimeSpan.FromMinutes(5);
        });
        _host = builder.Build();
        await _host.StartAsync();
        _host.Services.GetRequiredService<IBus>().ConnectPublishObserver(new JobRecorder(Published, job => BeforePublish?.Invoke(job)));
    }

    /// <summary>The jobs published for <paramref name="cacheKey"/>.</summary>
    public List<BuildLayer> JobsFor(string cacheKey) => Published.Where(j => j.CacheKey == cacheKey).ToList();

    public LayerJobRequest Request(string command, string? blobStore = null) => new()
    {
        BuildId = Guid.NewGuid(),
        StepId = "stage-0/step-1",
        BlobStore = blobStore ?? Store.StoreAddress,
        Parents = [Store.BaseLayer],
        Step = LayerStoreFixture.Run(command),
    };

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
            _host.Dispose();
        }

        await Store.DisposeAsync();
    }
}

/// <summary>Records every <see cref="BuildLayer"/> a bus publishes (to count jobs), then calls <paramref name="before"/>.</summary>
/// <summary>Records every job published to the farm's queue or sent to a worker's affinity queue.</summary>
/// <param name="sentTo">Where each job sent to an affinity queue went: the queue (<c>farm-build-layer.NAME</c>) by job id.</param>
internal sealed class JobRecorder(ConcurrentQueue<BuildLayer> published, Action<BuildLayer>? before = null, ConcurrentDictionary<Guid, string>? sentTo = null) : IPublishObserver, ISendObserver
{
    public Task PreSend<T>(SendContext<T> context)
        where T : class
    {
        // Publishing sends too: only sends to a worker's own exchange are jobs not recorded as published.
        var name = context.DestinationAddress?.AbsolutePath.Split('/')[^1] ?? string.Empty;
        if (context.Message is BuildLayer job && name.StartsWith(WorkerHosting.QueueName + ".", StringComparison.Ordinal))
        {
            sentTo?.TryAdd(job.JobId, name);
            Record(job);
        }

        return Task.CompletedTask;
    }

    private void Record(BuildLayer job)
    {
        published.Enqueue(job);
        before?.Invoke(job);
    }

    public Task PostSend<T>(SendContext<T> context)
        where T : class => Task.CompletedTask;

    public Task SendFault<T>(SendContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;

    public Task PrePublish<T>(PublishContext<T> context)
        where T : class
    {
        if (context.Message is BuildLayer job)
        {
            Record(job);
        }

        return Task.CompletedTask;
    }

    public Task PostPublish<T>(PublishContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PublishFault<T>(PublishContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}

[CollectionDefinition(Name)]
public sealed class GrainCollection : ICollectionFixture<GrainFixture>
{
    public const string Name = "embedded farm";
}
