using Farm.Containers;

namespace Farm.Containers.Tests;

/// <summary>The pure parts of the container runtime: -p values (commit -c changes: Farm.Dockerfile.Tests ConfigChangesTests).</summary>
public sealed class ContainersTests
{
    [Theory]
    [InlineData("8080:80", "0.0.0.0", 8080, 80, "tcp")]
    [InlineData("127.0.0.1:8080:80/udp", "127.0.0.1", 8080, 80, "udp")]
    [InlineData("[::1]:8443:443/TCP", "::1", 8443, 443, "tcp")]
    public void Port_mappings_parse_like_docker(string spec, string ip, int host, int container, string protocol)
    {
        Assert.Equal(new PortMapping(ip, host, container, protocol), PortMapping.Parse(spec));
    }

    [Fact]
    public void A_port_without_host_part_gets_a_free_host_port()
    {
        var mapping = PortMapping.Parse("80");
        Assert.Equal(80, mapping.ContainerPort);
        Assert.InRange(mapping.HostPort, 1, 65535);
        Assert.Equal("0.0.0.0:" + mapping.HostPort + "->80/tcp", mapping.ToString());
    }

    [Theory]
    [InlineData("8080:80/sctp", "protocol")]
    [InlineData("8080:0", "container port")]
    [InlineData("x:80", "host port")]
    [InlineData("1.2.3.4:1:2:3", "too many")]
    [InlineData("nothost:8080:80", "not an IP address")]
    public void Bad_port_mappings_say_what_is_wrong(string spec, string problem)
    {
        var e = Assert.Throws<InvalidPortMappingException>(() => PortMapping.Parse(spec));
        Assert.StartsWith($"FARM3104: invalid port mapping '{spec}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Publish_all_expands_exposed_ranges_and_protocols()
    {
        var mappings = PortMapping.ForExposed(["80/tcp", "53/udp", "7000-7001/tcp"]);
        Assert.Equal([(80, "tcp"), (53, "udp"), (7000, "tcp"), (7001, "tcp")], mappings.Select(m => (m.ContainerPort, m.Protocol)));
        Assert.All(mappings, m => Assert.InRange(m.HostPort, 1, 65535));
    }
}
