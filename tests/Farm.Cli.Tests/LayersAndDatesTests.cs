using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// Issue 18 through <c>farm build</c> on the local farm: WORKDIR made as the USER, device nodes in a base kept in
/// the image but closed to RUN, SOURCE_DATE_EPOCH giving one digest for two builds without cache, and images dated by
/// their build in <c>farm images</c>.
/// </summary>
public sealed partial class LayersAndDatesTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    [Fact]
    public async Task USER_then_WORKDIR_creates_the_directory_as_that_user_and_a_RUN_as_that_user_writes_in_it()
    {
        var context = fixture.Context(("Dockerfile", $"""
            FROM {BuildFixture.Base}
            RUN echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
            USER app
            WORKDIR /home/app/work
            RUN id > id.txt && cat id.txt && stat -c 'owner %n %U:%G' /home/app/work /home/app
            """));

        var result = Ok(await fixture.Farm("build", "--no-cache", "--progress", "plain", "-t", "workdir-user:1", context));

        Assert.Contains("uid=1000(app) gid=1000(app)", result.Stdout + result.Stderr, StringComparison.Ordinal);
        Assert.Contains("owner /home/app/work app:app", result.Stdout + result.Stderr, StringComparison.Ordinal);
        Assert.Contains("owner /home/app app:app", result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Device_nodes_of_a_base_stay_in_the_image_and_a_RUN_cannot_use_them()
    {
        var rootfs = Path.Combine(fixture.Directory, "devices-rootfs.tar");
        await WriteWithDevicesAsync(BuildFixture.BusyboxRootfs(Directory.CreateTempSubdirectory("farm-dev-").FullName), rootfs);
        Ok(await fixture.Farm("import", "-c", "CMD [\"sh\"]", rootfs, "farm-test-devices:1"));
        var output = Path.Combine(fixture.Directory, "devices-oci");
        var context = fixture.Context(("Dockerfile", """
            FROM farm-test-devices:1
            RUN test -c /srv/kmsg && test -c /dev-base/console && mknod /srv/made c 1 11 && echo nodes-there
            """));

        var built = Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=oci,dest={output},tar=false", "-t", "devices:1", context));
        Assert.Contains("nodes-there", built.Stdout + built.Stderr, StringComparison.Ordinal);

        // The base's nodes and the one the step made are in the exported image, with their numbers.
        var nodes = await DevicesInOciLayoutAsync(output);
        Assert.Contains(("dev-base/console", 5, 1), nodes);
        Assert.Contains(("srv/kmsg", 1, 11), nodes);
        Assert.Contains(("srv/made", 1, 11), nodes);

        // A node is not a right to the device: the root file system is mounted nodev (and the device rule opens runc's
        // defaults only).
        foreach (var node in new[] { "/srv/kmsg", "/srv/made" })
        {
            var denied = await fixture.Farm("build", "--progress", "plain", fixture.Context(("Dockerfile", $"""
                FROM devices:1
                RUN echo x > {node}
                """)));
            Assert.True(denied.ExitCode == 1, denied.ToString());
            Assert.Contains("Permission denied", denied.Stdout + denied.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Two_no_cache_builds_with_SOURCE_DATE_EPOCH_give_one_digest_dated_by_it_and_a_build_without_is_dated_now()
    {
        const string Dockerfile = $"""
            FROM {BuildFixture.Base}
            COPY app.txt /app/
            RUN mkdir -p /var/lib/app && echo built > /var/lib/app/built && touch /app/app.txt
            WORKDIR /srv/work
            """;
        var context = fixture.Context(("Dockerfile", Dockerfile), ("app.txt", "app\n"));
        string[] epoch = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000"];

        var first = FinishedDigest(Ok(await fixture.Farm(["build", "--no-cache", "--progress", "rawjson", .. epoch, "-t", "sde:1", context])));
        // The second build runs in a later second, with the context file written again: without the clamp, the times
        // in its layers would differ.
        var second1 = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1;
        await Wait.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeSeconds() >= second1), TimeSpan.FromSeconds(10), () => "the clock to reach the next second");
        await File.WriteAllTextAsync(Path.Combine(context, "app.txt"), "app\n");
        var second = FinishedDigest(Ok(await fixture.Farm(["build", "--no-cache", "--progress", "rawjson", .. epoch, "-t", "sde:2", context])));

        Assert.Equal(first, second);
        var dated = Inspect(Ok(await fixture.Farm("inspect", "sde:2")));
        Assert.Equal("2023-11-14T22:13:20Z", (string?)dated["created"]);
        Assert.All(dated["history"]!.AsArray().Skip(1), h => Assert.Equal("2023-11-14T22:13:20Z", (string?)h!["created"]));

        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        Ok(await fixture.Farm("build", "--no-cache", "--progress", "plain", "-t", "undated:1", context));
        var after = DateTimeOffset.UtcNow.AddSeconds(1);
        var now = Inspect(Ok(await fixture.Farm("inspect", "undated:1")));
        var created = DateTimeOffset.Parse((string)now["created"]!, CultureInfo.InvariantCulture);
        Assert.InRange(created, before, after);
        Assert.All(now["history"]!.AsArray().Skip(1), h => Assert.InRange(DateTimeOffset.Parse((string)h!["created"]!, CultureInfo.InvariantCulture), before, after));

        // farm images: the CREATED column starts where its header does on every line, with docker's ages.
        var lines = Ok(await fixture.Farm("images")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var column = lines[0].IndexOf("CREATED", StringComparison.Ordinal);
        string Row(string repository, string tag) => lines.Single(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var r, var t, ..]
            && (r == repository || r.EndsWith("/" + repository, StringComparison.Ordinal)) && t == tag);
        Assert.Matches(RecentAge(), Row("undated", "1")[column..]);
        var years = (int)(DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeSeconds(1700000000)).TotalHours / 24 / 365;
        Assert.StartsWith($"{years} years ago   ", Row("sde", "1")[column..], StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.Matches(@"^(\S.*? ago|N/A)\s{3}", l[column..]));
    }

    [GeneratedRegex(@"^(Less than a second|1 second|\d+ seconds|About a minute|\d+ minutes) ago\s{3}")]
    private static partial Regex RecentAge();

    private static string FinishedDigest(CliProcess.Result result) =>
        (string)result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!)
            .Single(e => (string?)e["type"] == "BuildFinished")["imageDigest"]!;

    private static JsonNode Inspect(CliProcess.Result result) => JsonNode.Parse(result.Stdout)!.AsArray()[0]!;

    /// <summary>The busybox rootfs plus device nodes as debootstrap leaves them (under dev-base/, since a step's /dev is its own) and elsewhere.</summary>
    private static async Task WriteWithDevicesAsync(string busybox, string path)
    {
        await using var output = File.Create(path);
        await using var writer = new TarWriter(output, TarEntryFormat.Pax);
        await using (var input = File.OpenRead(busybox))
        {
            await using var reader = new TarReader(input);
            while (await reader.GetNextEntryAsync(copyData: true) is { } entry)
            {
                await writer.WriteEntryAsync(entry);
            }
        }

        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "dev-base/") { Mode = (UnixFileMode)0x1ED });
        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.CharacterDevice, "dev-base/console") { DeviceMajor = 5, DeviceMinor = 1, Mode = (UnixFileMode)0x180 });
        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "srv/") { Mode = (UnixFileMode)0x1ED });
        await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.CharacterDevice, "srv/kmsg") { DeviceMajor = 1, DeviceMinor = 11, Mode = (UnixFileMode)0x1A4 });
    }

    /// <summary>Every device node in every layer of the one image of an OCI layout, read with the BCL's tar reader.</summary>
    private static async Task<List<(string Name, int Major, int Minor)>> DevicesInOciLayoutAsync(string layout)
    {
        static string Blob(string layout, string digest) => Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);
        var index = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json")))!;
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(Blob(layout, (string)index["manifests"]![0]!["digest"]!)))!;
        var nodes = new List<(string, int, int)>();
        foreach (var layer in manifest["layers"]!.AsArray())
        {
            await using var blob = File.OpenRead(Blob(layout, (string)layer!["digest"]!));
            await using var gzip = new GZipStream(blob, CompressionMode.Decompress);
            await using var reader = new TarReader(gzip);
            while (await reader.GetNextEntryAsync() is { } entry)
            {
                if (entry is PosixTarEntry { EntryType: TarEntryType.CharacterDevice or TarEntryType.BlockDevice } device)
                {
                    nodes.Add((device.Name.TrimStart('.', '/'), device.DeviceMajor, device.DeviceMinor));
                }
            }
        }

        return nodes;
    }

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}
