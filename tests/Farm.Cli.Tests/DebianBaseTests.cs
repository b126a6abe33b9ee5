using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A Debian base made as users of <c>docker import</c> make one (examples/base/debian.sh: debootstrap from the package
/// tarball infra/install.sh saved, then <c>farm import</c>), with its /dev intact: device nodes and merged-/usr links.
/// Issue 18 saw its first step fail with FARM2105.
/// </summary>
public sealed class DebianBaseTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    private const string Tarball = "/var/cache/farm/debian-bookworm.tgz";
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(15);

    [Fact]
    public async Task A_build_on_a_debootstrapped_base_with_its_dev_runs_as_a_new_user_in_its_workdir_and_keeps_the_device_nodes()
    {
        Assert.True(File.Exists(Tarball), $"{Tarball} is missing: run infra/install.sh (it saves the Debian packages of Farm's images).");
        var env = new Dictionary<string, string>(fixture.Env) { ["FARM"] = CliProcess.CommandText };
        await Tool.RunAsync(env, Path.Combine(RepoPaths.RepoRoot, "examples", "base", "debian.sh"), "--unpack-tarball", Tarball, "farm-test-debian:12");
        var context = fixture.Context(("Dockerfile", """
            FROM farm-test-debian:12
            RUN useradd --create-home --uid 1000 app
            USER app
            WORKDIR /home/app/work
            RUN id > id.txt && cat id.txt && stat -c 'owner %U' . && ls -l /lib/x86_64-linux-gnu/libc.so.6
            """));

        var build = await CliProcess.RunAsync(fixture.Env, Long, "build", "--progress", "plain", "-t", "on-debian:1", context);

        Assert.True(build.ExitCode == 0, build.ToString());
        var output = build.Stdout + build.Stderr;
        Assert.Contains("uid=1000(app) gid=1000(app)", output, StringComparison.Ordinal);
        Assert.Contains("owner app", output, StringComparison.Ordinal);
        // The base layer of the image holds debootstrap's /dev as it made it.
        var inspect = JsonNode.Parse((await CliProcess.RunAsync(fixture.Env, Long, "inspect", "on-debian:1")).Stdout)!.AsArray()[0]!;
        var devices = await DevicesOfFirstLayerAsync((string)inspect["Digest"]!);
        Assert.Contains(("dev/console", 5, 1), devices);
        Assert.Contains(("dev/null", 1, 3), devices);
    }

    private async Task<List<(string Name, int Major, int Minor)>> DevicesOfFirstLayerAsync(string manifestDigest)
    {
        string Blob(string digest) => Path.Combine(fixture.Env["FARM_STATE_DIR"], "images", "blobs", "sha256", digest["sha256:".Length..]);
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(Blob(manifestDigest)))!;
        await using var blob = File.OpenRead(Blob((string)manifest["layers"]![0]!["digest"]!));
        await using var gzip = new GZipStream(blob, CompressionMode.Decompress);
        await using var reader = new TarReader(gzip);
        var nodes = new List<(string, int, int)>();
        while (await reader.GetNextEntryAsync() is { } entry)
        {
            if (entry is PosixTarEntry { EntryType: TarEntryType.CharacterDevice } device)
            {
                nodes.Add((device.Name.TrimStart('.', '/'), device.DeviceMajor, device.DeviceMinor));
            }
        }

        return nodes;
    }
}
