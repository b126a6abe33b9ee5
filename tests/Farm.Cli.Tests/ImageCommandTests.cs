using System.Diagnostics;
using System.Formats.Tar;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>The local image commands, run as a user runs farm, checked with skopeo and podman.</summary>
public sealed class ImageCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-images-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Dictionary<string, string> Env => new()
    {
        ["FARM_STATE_DIR"] = Path.Combine(_dir, "state"),
        ["DOCKER_CONFIG"] = Path.Combine(_dir, "docker"),
    };

    private Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    [Fact]
    public async Task Import_tag_inspect_push_run_rmi_pull_save_load()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        var rootfs = BusyboxRootfs();
        var remote = $"{TestRegistries.Anonymous}/t{Guid.NewGuid():N}/bb:1";

        Ok(await Farm("import", "-c", "CMD [\"echo\",\"hi\"]", "-m", "busybox", rootfs, "bb"));
        Assert.Contains("docker.io/library/bb", Ok(await Farm("images")), StringComparison.Ordinal);
        Ok(await Farm("tag", "bb", remote));
        var inspect = JsonNode.Parse(Ok(await Farm("inspect", remote)))!.AsArray()[0]!;
        Assert.Equal("[\"echo\",\"hi\"]", inspect["config"]!["Cmd"]!.ToJsonString());
        Assert.Contains(remote, inspect["RepoTags"]!.AsArray().Select(t => (string?)t));

        Ok(await Farm("push", remote));
        var skopeo = await RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{remote}");
        var layers = JsonNode.Parse(skopeo)!["Layers"]!.AsArray();
        Assert.Single(layers);
        Assert.Equal("hi", (await RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", remote)).Trim());

        Ok(await Farm("rmi", remote, "bb"));
        Assert.DoesNotContain("bb", Ok(await Farm("images")), StringComparison.Ordinal);
        var missing = await Farm("inspect", "bb");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("farm: FARM5001: no such image: bb", missing.Stderr, StringComparison.Ordinal);

        Ok(await Farm("pull", remote));
        var archive = Path.Combine(_dir, "bb.tar");
        Ok(await Farm("save", "-o", archive, remote));
        var fromArchive = JsonNode.Parse(await RunAsync("skopeo", "inspect", $"docker-archive:{archive}"))!;
        Assert.Single(fromArchive["Layers"]!.AsArray());

        Ok(await Farm("rmi", remote));
        Assert.Contains($"Loaded image: {remote}", Ok(await Farm("load", "-i", archive)), StringComparison.Ordinal);
        var loaded = JsonNode.Parse(Ok(await Farm("inspect", remote)))!.AsArray()[0]!;
        Assert.Equal("[\"echo\",\"hi\"]", loaded["config"]!["Cmd"]!.ToJsonString());
    }

    [Fact]
    public async Task Push_to_the_htpasswd_registry_needs_a_login()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        var remote = $"{TestRegistries.Basic}/t{Guid.NewGuid():N}/bb:1";
        Ok(await Farm("import", BusyboxRootfs(), remote));

        var refused = await Farm("push", remote);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("login", refused.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("farm: FARM", refused.Stderr, StringComparison.Ordinal);

        Ok(await FarmCli.RunAsync(Env, "farm-secret\n", "login", "-u", "farm", "--password-stdin", TestRegistries.Basic));
        Assert.Contains("digest: sha256:", Ok(await Farm("push", remote)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_farm_tag_processes_lose_no_tag()
    {
        Ok(await Farm("import", BusyboxRootfs(), "bb"));

        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Farm("tag", "bb", $"bb:t{i}")));

        Assert.All(results, r => Ok(r));
        var images = Ok(await Farm("images"));
        Assert.All(Enumerable.Range(0, 6), i => Assert.Contains($" t{i} ", images, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Rmi_removes_the_blobs_no_other_image_uses()
    {
        Ok(await Farm("import", BusyboxRootfs(), "bb"));
        var blobs = Path.Combine(_dir, "state", "images", "blobs", "sha256");
        Assert.Equal(3, Directory.GetFiles(blobs).Length);

        Ok(await Farm("rmi", "bb"));

        Assert.Empty(Directory.GetFiles(blobs));
    }

    private static string Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }

    /// <summary>/bin/busybox and a symlink per applet, as a rootfs tar.</summary>
    private string BusyboxRootfs()
    {
        var path = Path.Combine(_dir, "rootfs.tar");
        if (File.Exists(path))
        {
            return path;
        }

        return Testing.BusyboxRootfs.Write(path);
    }

    private static async Task<string> RunAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
        return await stdout;
    }
}
