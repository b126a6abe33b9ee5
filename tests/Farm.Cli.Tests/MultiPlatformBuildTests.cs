using System.Text.Json.Nodes;
using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>farm build --platform linux/amd64,linux/arm64</c> on the embedded farm: one image index with an image per
/// platform, the arm64 steps run under qemu-user-static (infra/install.sh), checked with skopeo and podman. The base
/// is an index of two busybox images made offline: the host's busybox-static and Debian's busybox-static:arm64 that
/// infra/install.sh keeps (examples/base/busybox.sh --platform linux/arm64).
/// </summary>
public sealed class MultiPlatformBuildTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    // A cross stage runs on the builder's platform (amd64, natively) and writes what it was built for; the final
    // stage runs on the target's, so its RUN is the one arm64 step emulated.
    private const string CrossDockerfile = """
        FROM --platform=$BUILDPLATFORM BASE AS cross
        ARG TARGETARCH
        ARG BUILDPLATFORM
        RUN echo "cross on $(uname -m) ($BUILDPLATFORM) for $TARGETARCH" > /cross

        FROM BASE
        ARG TARGETPLATFORM
        ARG TARGETOS
        COPY --from=cross /cross /cross
        RUN echo "$TARGETOS $TARGETPLATFORM $(uname -m)" > /native
        CMD ["sh", "-c", "cat /cross /native; uname -m"]
        """;

    [Fact]
    public async Task Two_platforms_make_one_index_whose_arm64_image_runs_aarch64_under_podman_and_exports_as_oci()
    {
        var base_ = await MultiPlatformBase.PushAsync(fixture.Farm, fixture.Directory);
        var remote = $"{TestRegistries.Anonymous}/t{Guid.NewGuid():N}/cross:1";
        var layout = Path.Combine(fixture.Directory, "oci-" + Guid.NewGuid().ToString("N")[..8]);
        var context = fixture.Context(("Dockerfile", CrossDockerfile.Replace("BASE", base_, StringComparison.Ordinal)));

        var build = Ok(await fixture.Farm("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "--push", "-t", remote,
            "--output", $"type=oci,dest={layout},tar=false", context));
        Assert.Contains("[linux/arm64] RUN echo \"$TARGETOS", build.Stderr + build.Stdout, StringComparison.Ordinal);

        // The index lists both platforms, and each config names its architecture.
        var index = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{remote}"))!;
        Assert.Equal("application/vnd.oci.image.index.v1+json", (string?)index["mediaType"]);
        var platforms = index["manifests"]!.AsArray().Select(m => $"{m!["platform"]!["os"]}/{m["platform"]!["architecture"]}").ToList();
        Assert.Equal(["linux/amd64", "linux/arm64"], platforms);
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--config", "--raw", "--tls-verify=false", "--override-arch", arch, $"docker://{remote}"))!;
            Assert.Equal(arch, (string?)config["architecture"]);
            Assert.Equal("linux", (string?)config["os"]);
        }

        // The --output type=oci layout holds the same index, and skopeo reads each platform's image from it.
        var exported = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--raw", $"oci:{layout}:1"))!;
        Assert.Equal(index["manifests"]!.ToJsonString(), exported["manifests"]!.ToJsonString());
        var exportedArm = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--config", "--raw", "--override-arch", "arm64", $"oci:{layout}:1"))!;
        Assert.Equal("arm64", (string?)exportedArm["architecture"]);

        // podman runs each platform's image: the arm64 one under qemu says aarch64; the cross stage ran on amd64 for both.
        try
        {
            Assert.Equal(
                "cross on x86_64 (linux/amd64) for arm64\nlinux linux/arm64 aarch64\naarch64\n",
                await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", "--pull=always", "--platform", "linux/arm64", remote));
            Assert.Equal(
                "cross on x86_64 (linux/amd64) for amd64\nlinux linux/amd64 x86_64\nx86_64\n",
                await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", "--pull=always", "--platform", "linux/amd64", remote));
        }
        finally
        {
            await Tool.RunAsync("podman", "rmi", "-f", remote);
        }
    }

    [Fact]
    public async Task Pull_and_run_take_the_platform_asked_for_from_an_index_and_images_shows_it()
    {
        var base_ = await MultiPlatformBase.PushAsync(fixture.Farm, fixture.Directory);
        var repository = base_[..base_.LastIndexOf(':')];

        Ok(await fixture.Farm("pull", "--platform", "linux/arm64", base_));
        var row = Ok(await fixture.Farm("images")).Stdout.Split('\n').Single(l => l.StartsWith(repository + " ", StringComparison.Ordinal) && l.Contains(" multi ", StringComparison.Ordinal));
        Assert.EndsWith(" linux/arm64", row.TrimEnd(), StringComparison.Ordinal);

        // The local arm64 image runs under qemu; asked for amd64, run pulls that one in its place.
        Assert.Equal("aarch64\n", Ok(await fixture.Farm("run", "--rm", "--network", "none", "--platform", "linux/arm64", base_, "uname", "-m")).Stdout);
        var amd = Ok(await fixture.Farm("run", "--rm", "--network", "none", "--platform", "linux/amd64", base_, "uname", "-m"));
        Assert.Equal("x86_64\n", amd.Stdout);
        Assert.Contains("is for linux/arm64, not linux/amd64", amd.Stderr, StringComparison.Ordinal);
        row = Ok(await fixture.Farm("images")).Stdout.Split('\n').Single(l => l.StartsWith(repository + " ", StringComparison.Ordinal) && l.Contains(" multi ", StringComparison.Ordinal));
        Assert.EndsWith(" linux/amd64", row.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Several_platforms_to_a_docker_archive_are_refused_before_anything_runs()
    {
        var context = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\nRUN echo never > /x\n"));
        var archive = Path.Combine(fixture.Directory, "multi.tar");

        var result = await fixture.Farm("build", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", "--output", $"type=docker,dest={archive}", context);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("FARM4320", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("never", result.Stderr + result.Stdout, StringComparison.Ordinal);
        Assert.False(File.Exists(archive));
    }

    [Fact]
    public async Task A_malformed_platform_is_refused_by_the_cli()
    {
        var context = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\n"));

        var result = await fixture.Farm("build", "--platform", "linux/amd64,linux//", context);

        Assert.NotEqual(0, result.ExitCode);
        Assert.StartsWith("farm: FARM5010: --platform linux// is not a platform", result.Stderr, StringComparison.Ordinal);
    }

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}
