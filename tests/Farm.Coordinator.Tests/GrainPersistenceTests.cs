using Farm.Coordinator.Grains;
using Farm.Coordinator.Hosting;
using Farm.Oci.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Farm.Coordinator.Tests;

/// <summary>With Redis configured, silos cluster through Redis and a built layer survives the silo (docs/architecture.md, "Failure model").</summary>
public sealed class GrainPersistenceTests
{
    [Fact]
    public async Task A_built_layer_is_still_known_after_the_silo_restarts_with_Redis_storage()
    {
        await FarmClusterFixture.EnsureRedisAsync();
        // A cluster of its own, so other runs' silos and state stay out of this test.
        var cluster = "farm-test-" + Guid.NewGuid().ToString("N")[..10];
        var key = LayerStoreFixture.NewKey();
        var layer = new BuiltLayer { Digest = "sha256:" + new string('a', 64), DiffId = "sha256:" + new string('b', 64), MediaType = "application/vnd.oci.image.layer.v1.tar+gzip", Size = 42 };

        using (var first = await StartSiloAsync(cluster))
        {
            // What the results consumer does when a worker reports LayerBuilt.
            await first.Services.GetRequiredService<IGrainFactory>().GetGrain<ILayerGrain>(key)
                .OnJobBuiltAsync(Guid.NewGuid(), new JobSuccess { Layer = layer, Worker = "w", Timings = new JobTimings() });
            await first.StopAsync();
        }

        using var second = await StartSiloAsync(cluster);
        try
        {
            var outcome = await second.Services.GetRequiredService<IGrainFactory>().GetGrain<ILayerGrain>(key).GetOutcomeAsync();
            Assert.Equal(layer, outcome?.Success?.Layer);
        }
        finally
        {
            await second.StopAsync();
        }
    }

    private static async Task<IHost> StartSiloAsync(string cluster)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.AddFarmCoordinator(o =>
        {
            o.Transport = FarmTransport.InMemory;
            o.Redis = "127.0.0.1:6379";
            o.ClusterId = cluster;
            o.ServiceId = cluster;
            o.SiloPort = FreePorts.Tcp();
            o.GatewayPort = FreePorts.Tcp();
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
