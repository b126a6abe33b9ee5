using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Coordinator.Builds;
using Farm.Oci.Net;
using Farm.Testing;
using Farm.Worker;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The farm as processes: <c>dotnet Farm.Coordinator.dll</c> (API on a free port, no Redis) and two
/// <c>dotnet Farm.Worker.dll</c> on a RabbitMQ virtual host made for this run. Builds are submitted the way a service
/// in another language would: raw MassTransit-envelope JSON published through RabbitMQ's management API.
/// </summary>
public sealed class SubmitProcessFixture : IAsyncLifetime
{
    private CoordinatorProcess? _coordinator;

    private RabbitMqVirtualHost? _vhost;

    private RabbitMqVirtualHost Vhost => _vhost ?? throw new InvalidOperationException("The fixture is not initialised.");

    public string VirtualHost => Vhost.Name;

    public LayerStoreFixture Store { get; } = new();

    public List<WorkerProcess> Workers { get; } = [];

    public HttpClient Api { get; private set; } = null!;

    public SubmitContext Context { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-submit-");

        var port = FreePorts.Tcp();
        _coordinator = StartCoordinator(port);
        Api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        Workers.Add(WorkerProcess.Start("worker-a", Path.Combine(Store.Root, "wa"), VirtualHost));
        Workers.Add(WorkerProcess.Start("worker-b", Path.Combine(Store.Root, "wb"), VirtualHost));
        Context = await SubmitContext.CreateAsync(Store.StoreAddress, Store.BaseLayer);

        await Wait.UntilAsync(async () => await _coordinator.HealthAsync() is >= 200 and <= 299, TimeSpan.FromSeconds(90), () => "the coordinator process to answer /healthz" + Diagnostics());
        await Wait.UntilAsync(async () => await ConsumersAsync(WorkerHosting.QueueName) == 2, TimeSpan.FromSeconds(60),
            () => "both workers to consume from " + WorkerHosting.QueueName + Diagnostics());
        await Wait.UntilAsync(async () => await ConsumersAsync(SubmitBuildConsumer.QueueName) == 1, TimeSpan.FromSeconds(60),
            () => "the coordinator to consume from " + SubmitBuildConsumer.QueueName + Diagnostics());
    }

    public Task<int> ConsumersAsync(string queue) => Vhost.ConsumersAsync(queue);

    /// <summary>Publishes <paramref name="body"/> as-is to <paramref name="exchange"/>; true when RabbitMQ routed it to a queue.</summary>
    public async Task<bool> PublishRawAsync(string exchange, string contentType, string body)
    {
        var request = new JsonObject
        {
            ["properties"] = new JsonObject { ["content_type"] = contentType, ["delivery_mode"] = 2 },
            ["routing_key"] = string.Empty,
            ["payload"] = body,
            ["payload_encoding"] = "string",
        };
        using var response = await Vhost.Management.PostAsJsonAsync($"{RabbitMqVirtualHost.ManagementUrl}exchanges/{Uri.EscapeDataString(VirtualHost)}/{Uri.EscapeDataString(exchange)}/publish", request);
        response.EnsureSuccessStatusCode();
        return (bool)(await response.Content.ReadFromJsonAsync<JsonObject>())!["routed"]!;
    }

    public string Diagnostics() => Teardown.Diagnostics(_coordinator, Workers);

    private CoordinatorProcess StartCoordinator(int httpPort) =>
        CoordinatorProcess.Start(Vhost.AmqpUrl, httpPort, Store.StoreAddress, Path.Combine(Store.Root, "coordinator"));

    public async Task DisposeAsync()
    {
        Api?.Dispose();
        await Teardown.InOrderAsync([.. Workers, _coordinator, _vhost]);
        Context?.Dispose();
        await Store.DisposeAsync();
    }
}

/// <summary>A raw-JSON SubmitBuild on RabbitMQ builds and pushes through the coordinator and worker processes.</summary>
public sealed class SubmitProcessTests(SubmitProcessFixture farm) : IClassFixture<SubmitProcessFixture>
{
    [Fact]
    public async Task A_raw_json_submit_build_published_to_rabbitmq_is_built_by_the_worker_processes_and_pushed()
    {
        var buildId = Guid.NewGuid();
        var tag = farm.Context.Tag("queued:1");
        // Exactly what the README documents: the MassTransit envelope around the camelCase SubmitBuild.
        var envelope = new JsonObject
        {
            ["messageId"] = Guid.NewGuid().ToString(),
            ["messageType"] = new JsonArray("urn:message:Farm.Contracts:SubmitBuild"),
            ["message"] = farm.Context.SubmitJson(tag, buildId),
        };

        var routed = await farm.PublishRawAsync("Farm.Contracts:SubmitBuild", "application/vnd.masstransit+json", envelope.ToJsonString());
        Assert.True(routed, "RabbitMQ did not route the SubmitBuild to a queue" + farm.Diagnostics());

        JsonObject? status = null;
        await Wait.UntilAsync(
            async () =>
            {
                using var response = await farm.Api.GetAsync($"builds/{buildId}");
                status = response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonObject>() : null;
                return (string?)status?["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromMinutes(4),
            () => $"build {buildId} to succeed or fail; last status: {status?.ToJsonString() ?? "(unknown id)"}" + farm.Diagnostics());

        Assert.True((string?)status!["status"] == "succeeded", status.ToJsonString() + farm.Diagnostics());
        var digest = (string?)status["imageDigest"];
        Assert.Equal(digest, await SubmitContext.RegistryDigestAsync(tag));
        var steps = status["steps"]!.AsArray();
        Assert.Equal(3, steps.Count);
        Assert.All(steps, s => Assert.Equal("built", (string?)s!["status"]));
        Assert.All(steps, s => Assert.Contains((string?)s!["worker"], new[] { "worker-a", "worker-b" }));
    }
}
