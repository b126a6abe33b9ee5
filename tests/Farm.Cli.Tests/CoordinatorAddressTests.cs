using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A coordinator meant for several machines is told where its silo listens and which address the other coordinators
/// reach it at (docs/configuration.md); settings that could not work stop it at start with FARM4260, before it joins
/// any cluster.
/// </summary>
public sealed class CoordinatorAddressTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("farm-silo-address-").FullName;

    [Theory]
    [InlineData("0.0.0.0", null, "Farm:Coordinator:SiloAddress is 0.0.0.0 (every interface) and Farm:Coordinator:AdvertisedAddress is not set")]
    [InlineData("coordinator-1", null, "Farm:Coordinator:SiloAddress 'coordinator-1' is not an IP address")]
    [InlineData("0.0.0.0", "0.0.0.0", "Farm:Coordinator:AdvertisedAddress '0.0.0.0' is not one IP address")]
    public async Task A_coordinator_whose_silo_address_cannot_be_reached_refuses_to_start_and_says_what_to_set(string silo, string? advertised, string expected)
    {
        var environment = new Dictionary<string, string>
        {
            // With Redis the silo joins a cluster; the addresses are refused before anything connects to it.
            ["Farm__Coordinator__Redis"] = "127.0.0.1:6379",
            ["Farm__Coordinator__SiloAddress"] = silo,
        };
        if (advertised is not null)
        {
            environment["Farm__Coordinator__AdvertisedAddress"] = advertised;
        }

        await using var coordinator = CoordinatorProcess.Start("amqp://guest:guest@127.0.0.1:5672/", 0, "registry://127.0.0.1:5100/farm/cache", _directory, environment);

        Assert.Equal(1, await coordinator.WaitForExitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains($"farm-coordinator: FARM4260: {expected}", coordinator.Output(), StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
