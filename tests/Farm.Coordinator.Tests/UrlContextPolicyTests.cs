using System.Net;
using Farm.Coordinator.Builds.UrlContexts;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The farm's policy on URL contexts (<c>Farm:Builds:UrlContexts</c>), decided on addresses: what a tenant's URL may make
/// a coordinator connect to. Nothing here connects anywhere; "localhost" is resolved, as the policy resolves every name.
/// </summary>
public sealed class UrlContextPolicyTests
{
    private static readonly (string Host, int Port)[] Services = [("127.0.0.1", 6379), ("127.0.0.1", 5672), ("10.20.0.5", 5000)];

    [Theory]
    [InlineData("127.0.0.1", 8080)]
    [InlineData("127.8.9.10", 80)]
    [InlineData("::1", 443)]
    [InlineData("169.254.169.254", 80)]
    [InlineData("fe80::1", 80)]
    [InlineData("0.0.0.0", 80)]
    [InlineData("::ffff:127.0.0.1", 80)]
    [InlineData("10.20.0.5", 443)]
    public async Task By_default_loopback_link_local_and_the_farms_own_services_are_refused(string address, int port)
    {
        var policy = new UrlContextPolicy(new UrlContextOptions(), Services);

        Assert.NotNull(await policy.RefusalAsync(IPAddress.Parse(address), port, CancellationToken.None));
    }

    [Fact]
    public async Task A_name_is_checked_on_the_address_it_resolves_to_and_an_ordinary_address_is_allowed()
    {
        var policy = new UrlContextPolicy(new UrlContextOptions(), Services);

        var refused = await Assert.ThrowsAsync<UrlContextRefusedException>(() => policy.CheckAsync("http://user:hunter2@localhost:8080/ctx.tar", "localhost", 8080, CancellationToken.None));
        Assert.StartsWith("FARM4360: the farm refuses to fetch the build context http://***@localhost:8080/ctx.tar: localhost is ", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", refused.Message, StringComparison.Ordinal);
        Assert.Equal([IPAddress.Parse("192.0.2.10")], await policy.CheckAsync("https://192.0.2.10/ctx.tar", "192.0.2.10", 443, CancellationToken.None));
    }

    [Fact]
    public async Task Allowed_networks_admit_only_themselves_and_the_farms_services_stay_refused_by_port()
    {
        var policy = new UrlContextPolicy(new UrlContextOptions { AllowedNetworks = ["127.0.0.1"], DeniedNetworks = ["192.0.2.128/25"] }, Services);

        Assert.Null(await policy.RefusalAsync(IPAddress.Loopback, 8080, CancellationToken.None));
        Assert.Contains("farm's own services", await policy.RefusalAsync(IPAddress.Loopback, 6379, CancellationToken.None), StringComparison.Ordinal);
        Assert.Contains("outside the networks", await policy.RefusalAsync(IPAddress.Parse("192.0.2.10"), 443, CancellationToken.None), StringComparison.Ordinal);
        Assert.Contains("DeniedNetworks", await policy.RefusalAsync(IPAddress.Parse("192.0.2.200"), 443, CancellationToken.None), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Off_refuses_every_URL()
    {
        var policy = new UrlContextPolicy(new UrlContextOptions { Enabled = false }, Services);

        var refused = await Assert.ThrowsAsync<UrlContextRefusedException>(() => policy.CheckAsync("https://192.0.2.10/ctx.tar", "192.0.2.10", 443, CancellationToken.None));
        Assert.Contains("Farm:Builds:UrlContexts:Enabled is false", refused.Message, StringComparison.Ordinal);
    }
}
