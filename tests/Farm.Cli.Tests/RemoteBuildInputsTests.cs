using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// The ways into and out of a build (<see cref="BuildInputsTests"/>) through a coordinator and a worker running as
/// processes: <c>farm build --farm</c> over HTTP and <c>farm submit</c> over RabbitMQ; the images are checked with
/// skopeo and podman.
/// </summary>
public sealed class RemoteBuildInputsTests(RemoteFarmFixture farm) : IClassFixture<RemoteFarmFixture>
{
    [Fact]
    public async Task Build_with_farm_takes_a_stdin_tar_applies_RUN_settings_and_writes_iidfile_and_metadata()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var image = $"{farm.Repository}/inputs:{marker}";
        var tar = BuildInputsTests.Compress(BuildInputsTests.Tar(
            ("Dockerfile", $"FROM {farm.Base}\nCOPY msg /msg\nRUN cat /etc/hosts > /hosts && ulimit -Hn > /nofile && df -k /dev/shm | tail -n 1 > /shm && echo {marker}\n"),
            ("msg", $"stdin tar {marker}\n")), "gzip");
        var iid = Path.Combine(farm.Directory, "iid-" + marker);

        var result = await StdinCli.RunAsync(farm.Env, tar, "build", "--progress", "plain", "--push", "-t", image, "--add-host", "db.internal:10.1.2.3", "--ulimit", "nofile=512:1536", "--shm-size", "96m", "--iidfile", iid, "--metadata-file", iid + ".json", "-");

        Assert.True(result.ExitCode == 0, result + farm.Diagnostics());
        var manifest = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{image}"))!;
        var digest = (string)JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{image}"))!["Digest"]!;
        Assert.Equal((string?)manifest["config"]!["digest"], File.ReadAllText(iid));
        var metadata = JsonNode.Parse(File.ReadAllText(iid + ".json"))!;
        Assert.Equal(digest, (string?)metadata["containerimage.digest"]);
        Assert.Equal(File.ReadAllText(iid), (string?)metadata["containerimage.config.digest"]);
        Assert.Equal(image, (string?)metadata["image.name"]);

        var seen = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image, "sh", "-c", "cat /msg /nofile /shm /hosts");
        await Tool.RunAsync("podman", "rmi", "-f", image);
        Assert.StartsWith($"stdin tar {marker}\n1536\n", seen, StringComparison.Ordinal);
        Assert.Contains(" 98304 ", seen, StringComparison.Ordinal);
        Assert.Contains("10.1.2.3\tdb.internal\n", seen, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_with_farm_uploads_a_directory_named_context_for_COPY_from()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var image = $"{farm.Repository}/named:{marker}";
        var assets = Directory.CreateDirectory(Path.Combine(farm.Directory, "assets-" + marker)).FullName;
        File.WriteAllText(Path.Combine(assets, "data.txt"), $"named {marker}\n");

        var result = await StdinCli.RunAsync(farm.Env, Encoding.UTF8.GetBytes($"FROM {farm.Base}\nCOPY --from=assets data.txt /data.txt\n"), "build", "--progress", "plain", "--push", "-t", image, "--build-context", $"assets={assets}", "-");

        Assert.True(result.ExitCode == 0, result + farm.Diagnostics());
        var seen = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image, "cat", "/data.txt");
        await Tool.RunAsync("podman", "rmi", "-f", image);
        Assert.Equal($"named {marker}\n", seen);
    }

    [Fact]
    public async Task Submit_carries_network_none_and_a_named_image_context_in_the_queue_message()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var image = $"{farm.Repository}/submitted:{marker}";
        var dockerfile = Encoding.UTF8.GetBytes($"FROM base\nRUN ls /sys/class/net > /net && echo {marker}\n");

        var result = await StdinCli.RunAsync(farm.Env, dockerfile, "submit", "--wait", "--progress", "plain", "--push", "-t", image, "--network", "none", "--build-context", $"base=docker-image://{farm.Base}", "-");

        Assert.True(result.ExitCode == 0, result + farm.Diagnostics());
        var seen = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image, "cat", "/net");
        await Tool.RunAsync("podman", "rmi", "-f", image);
        Assert.Equal("lo\n", seen);
    }

    [Fact]
    public async Task Build_with_farm_uploads_an_oci_layout_context_for_FROM_and_COPY_from_and_hits_the_cache_again()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var image = $"{farm.Repository}/layout:{marker}";
        var (layout, manifest) = await LayoutAsync(marker);
        var dockerfile = Encoding.UTF8.GetBytes($"FROM base\nRUN echo {marker} > /m\nCOPY --from=tools /bin/busybox /copied-busybox\n");
        string[] args = ["build", "--progress", "plain", "--push", "-t", image, "--build-context", $"base=oci-layout://{layout}:base", "--build-context", $"tools=oci-layout://{layout}@{manifest}", "-"];

        var first = await StdinCli.RunAsync(farm.Env, dockerfile, args);

        Assert.True(first.ExitCode == 0, first + farm.Diagnostics());
        Assert.DoesNotContain("CACHED", first.Stderr, StringComparison.Ordinal);
        var seen = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image, "sh", "-c", "cat /m && wc -c < /copied-busybox");
        await Tool.RunAsync("podman", "rmi", "-f", image);
        Assert.Equal($"{marker}\n{new FileInfo("/bin/busybox").Length}\n", seen);
        // The base's layers are the layout's, as pushed: the built image's first layer is the busybox layer.
        var built = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{image}"))!;
        var based = JsonNode.Parse(File.ReadAllText(Path.Combine(layout, "blobs", "sha256", manifest["sha256:".Length..])))!;
        Assert.Equal((string?)based["layers"]![0]!["digest"], (string?)built["layers"]![0]!["digest"]);

        var again = await StdinCli.RunAsync(farm.Env, dockerfile, args);

        Assert.True(again.ExitCode == 0, again + farm.Diagnostics());
        Assert.Equal(2, Regex.Count(again.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
    }

    [Fact]
    public async Task Submit_uploads_an_oci_layout_context_and_a_wrong_digest_is_refused_before_anything_is_sent()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var image = $"{farm.Repository}/submitted-layout:{marker}";
        var (layout, _) = await LayoutAsync(marker);
        var dockerfile = Encoding.UTF8.GetBytes($"FROM base\nRUN echo {marker} > /m\n");

        var result = await StdinCli.RunAsync(farm.Env, dockerfile, "submit", "--wait", "--progress", "plain", "--push", "-t", image, "--build-context", $"base=oci-layout://{layout}", "-");

        Assert.True(result.ExitCode == 0, result + farm.Diagnostics());
        var seen = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image, "cat", "/m");
        await Tool.RunAsync("podman", "rmi", "-f", image);
        Assert.Equal(marker + "\n", seen);

        var wrong = "sha256:" + new string('b', 64);
        foreach (var command in new[] { "submit", "build" })
        {
            var refused = await StdinCli.RunAsync(farm.Env, dockerfile, command, "--progress", "plain", "--build-context", $"base=oci-layout://{layout}@{wrong}", "-");
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains($"farm: FARM1221: the build context 'base' (--build-context) cannot be used: oci-layout://{layout}@{wrong}: no image of its index.json has the digest or tag '{wrong}' (it has base)", refused.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Build_with_farm_takes_the_builds_platform_from_an_oci_layout_index()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var image = $"{farm.Repository}/layout-index:{marker}";
        var (layout, manifest) = await LayoutAsync(marker);
        // The layout's one entry becomes an image index holding the busybox manifest for linux/amd64, as a
        // multi-platform image's layout has it (skopeo copy --all of an index).
        var entry = JsonNode.Parse(File.ReadAllText(Path.Combine(layout, "index.json")))!["manifests"]![0]!.AsObject();
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(new JsonObject
            {
                ["mediaType"] = (string?)entry["mediaType"],
                ["digest"] = manifest,
                ["size"] = (long)entry["size"]!,
                ["platform"] = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux" },
            }),
        };
        var bytes = Encoding.UTF8.GetBytes(index.ToJsonString());
        var digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        File.WriteAllBytes(Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]), bytes);
        var top = new JsonObject { ["schemaVersion"] = 2, ["manifests"] = new JsonArray(new JsonObject { ["mediaType"] = "application/vnd.oci.image.index.v1+json", ["digest"] = digest, ["size"] = bytes.Length }) };
        File.WriteAllText(Path.Combine(layout, "index.json"), top.ToJsonString());
        var dockerfile = Encoding.UTF8.GetBytes($"FROM base\nRUN echo {marker} > /m\n");

        var result = await StdinCli.RunAsync(farm.Env, dockerfile, "build", "--progress", "plain", "--push", "-t", image, "--build-context", $"base=oci-layout://{layout}", "-");

        Assert.True(result.ExitCode == 0, result + farm.Diagnostics());
        var seen = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image, "cat", "/m");
        await Tool.RunAsync("podman", "rmi", "-f", image);
        Assert.Equal(marker + "\n", seen);

        var arm = await StdinCli.RunAsync(farm.Env, dockerfile, "build", "--progress", "plain", "--platform", "linux/arm64", "--build-context", $"base=oci-layout://{layout}", "-");
        Assert.Equal(1, arm.ExitCode);
        Assert.Contains($"farm: FARM1221: the build context 'base' (--build-context) cannot be used: oci-layout://{layout}: its index has no image for linux/arm64 (it has linux/amd64)", arm.Stderr, StringComparison.Ordinal);
    }

    /// <summary>An OCI layout of the farm's busybox base, copied by skopeo under the tag <c>base</c>: its directory and manifest digest.</summary>
    private async Task<(string Directory, string Manifest)> LayoutAsync(string marker)
    {
        var layout = Path.Combine(farm.Directory, "layout-" + marker);
        await Tool.RunAsync("skopeo", "copy", "--src-tls-verify=false", $"docker://{farm.Base}", $"oci:{layout}:base");
        var manifest = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(layout, "index.json")))!["manifests"]![0]!["digest"]!;
        return (layout, manifest);
    }
}
