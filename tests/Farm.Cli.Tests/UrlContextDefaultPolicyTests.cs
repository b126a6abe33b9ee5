using System.Net;
using System.Net.Sockets;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>A coordinator with the default policy on URL contexts (no <c>Farm:Builds:UrlContexts</c> settings), on a RabbitMQ virtual host of its own; no worker: nothing here gets as far as a step.</summary>
public sealed class UrlContextDefaultPolicyFixture : IAsyncLifetime
{
    private CoordinatorProcess? _coordinator;
    private RabbitMqVirtualHost? _vhost;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-urlpolicy-").FullName;

    public Dictionary<string, string> Env => FarmCli.ClientEnv(Directory, _coordinator?.Url, _vhost?.AmqpUrl ?? string.Empty);

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-urlpolicy-");
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{TestRegistries.Anonymous}/t{Guid.NewGuid():N}/cache", Path.Combine(Directory, "coordinator"));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-submit-build") == 1, TimeSpan.FromSeconds(60), () => "the coordinator to consume farm-submit-build" + Teardown.Diagnostics(("coordinator", _coordinator.OutputTail())));
    }

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_coordinator, _vhost);
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>
/// What a farm's default policy does with a tenant's URL that leads back into the farm: refused on the address the name
/// resolves to, before any connection, as the build's failure.
/// </summary>
public sealed class UrlContextDefaultPolicyTests(UrlContextDefaultPolicyFixture farm) : IClassFixture<UrlContextDefaultPolicyFixture>
{
    [Fact]
    public async Task Loopback_by_address_or_by_name_is_refused_and_never_connected_to()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        foreach (var host in new[] { "127.0.0.1", "localhost" })
        {
            var result = await FarmCli.RunAsync(farm.Env, null, "submit", "--wait", $"http://{host}:{port}/ctx.tar.gz");
            Assert.Equal(1, result.ExitCode);
            Assert.Contains($"FARM4360: the farm refuses to fetch the build context http://{host}:{port}/ctx.tar.gz: {host} is ", result.Stderr, StringComparison.Ordinal);
            Assert.Contains("which is this machine", result.Stderr, StringComparison.Ordinal);
        }

        var git = await FarmCli.RunAsync(farm.Env, null, "submit", "--wait", $"git://127.0.0.1:{port}/app.git#main");
        Assert.Equal(1, git.ExitCode);
        Assert.Contains("FARM4360: ", git.Stderr, StringComparison.Ordinal);
        // Nothing ever knocked: the refusals came before any connection.
        Assert.False(listener.Pending(), "the coordinator connected to a refused address");
    }
}
