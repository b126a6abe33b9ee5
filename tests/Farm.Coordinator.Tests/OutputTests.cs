using System.Text.Json.Nodes;
using Farm.Oci.Images;
using Farm.Coordinator.Assembly;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>Writes the busybox image as the three --output types and reads each back with an independent tool.</summary>
public sealed class OutputTests(BusyboxImageFixture fixture) : IClassFixture<BusyboxImageFixture>
{
    [Fact]
    public async Task Oci_output_is_a_tar_skopeo_reads()
    {
        var path = Path.Combine(fixture.WorkDir, "image-oci.tar");
        await ImageExporter.WriteAsync(fixture.Image, OutputSpec.Parse($"type=oci,dest={path}"), ["farm/app:1"], [fixture.Cache], CancellationToken.None);

        var inspected = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", $"oci-archive:{path}"))!;
        Assert.Equal(fixture.Image.Digest.ToString(), (string?)inspected["Digest"]);
        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--config", $"oci-archive:{path}:1"))!;
        Assert.Equal(["cat", "/hello.txt"], config["config"]!["Cmd"]!.AsArray().Select(e => (string?)e));
        // The two-argument overload lists dot-directories too (it hides no attribute).
        Assert.Empty(Directory.EnumerateDirectories(fixture.WorkDir, ".image-oci.tar.farm-*"));
    }

    [Fact]
    public async Task Oci_output_with_tar_false_is_a_layout_directory()
    {
        var dir = Path.Combine(fixture.WorkDir, "layout");
        await ImageExporter.WriteAsync(fixture.Image, OutputSpec.Parse($"type=oci,dest={dir},tar=false,name=farm/app:v2"), [], [fixture.Cache], CancellationToken.None);

        var inspected = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", $"oci:{dir}:v2"))!;
        Assert.Equal(fixture.Image.Digest.ToString(), (string?)inspected["Digest"]);
        var index = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(dir, "index.json")))!;
        Assert.Equal("docker.io/farm/app:v2", (string?)index["manifests"]![0]!["annotations"]!["io.containerd.image.name"]);
    }

    [Fact]
    public async Task Docker_output_loads_into_podman_and_runs()
    {
        var path = Path.Combine(fixture.WorkDir, "image-docker.tar");
        var name = $"localhost/farm-{fixture.Namespace}:1";
        await ImageExporter.WriteAsync(fixture.Image, OutputSpec.Parse($"type=docker,dest={path}"), [name], [fixture.Cache], CancellationToken.None);

        try
        {
            Assert.Contains(name, await Tool.RunAsync("podman", "load", "-i", path), StringComparison.Ordinal);
            Assert.Equal(BusyboxImageFixture.Hello, await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", name));
        }
        finally
        {
            await PushTests.RemovePodmanImageAsync(name);
        }
    }

    [Fact]
    public async Task Local_output_is_the_root_filesystem()
    {
        var dir = Path.Combine(fixture.WorkDir, "rootfs");
        await ImageExporter.WriteAsync(fixture.Image, OutputSpec.Parse($"type=local,dest={dir}"), [], [fixture.Cache], CancellationToken.None);

        Assert.Equal(BusyboxImageFixture.Hello, await File.ReadAllTextAsync(Path.Combine(dir, "hello.txt")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(dir, "bin", "sh")).LinkTarget);
        Assert.Equal("hi\n", await Tool.RunAsync(Path.Combine(dir, "bin", "busybox"), "echo", "hi"));
    }
}
