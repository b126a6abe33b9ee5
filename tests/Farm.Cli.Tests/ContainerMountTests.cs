using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary><c>farm run -v</c>, <c>--mount</c> and <c>--entrypoint</c> against real runc and overlayfs.</summary>
public sealed class ContainerMountTests(ContainerFixture farm) : IClassFixture<ContainerFixture>
{
    [Fact]
    public async Task A_volume_shows_host_files_keeps_what_the_container_writes_and_ro_refuses_writes()
    {
        var host = Directory.CreateDirectory(Path.Combine(farm.Directory, "vol-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        await File.WriteAllTextAsync(Path.Combine(host, "in.txt"), "from the host\n");

        var read = await farm.Ok("run", "--rm", "-v", $"{host}:/data", "bb", "sh", "-c", "cat /data/in.txt; echo written inside > /data/out.txt");
        Assert.Equal("from the host\n", read);
        Assert.Equal("written inside\n", await File.ReadAllTextAsync(Path.Combine(host, "out.txt")));

        var refused = await farm.Farm("run", "--rm", "-v", $"{host}:/data:ro", "bb", "sh", "-c", "echo no > /data/ro.txt && echo wrote || echo refused");
        Assert.Equal("refused\n", refused.Stdout);
        Assert.Contains("Read-only file system", refused.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(host, "ro.txt")));

        var mounted = await farm.Farm("run", "--rm", "--mount", $"type=bind,source={host},target=/m,readonly", "bb", "sh", "-c", "cat /m/in.txt; touch /m/new || echo refused");
        Assert.Equal("from the host\nrefused\n", mounted.Stdout);
        Assert.False(File.Exists(Path.Combine(host, "new")));
    }

    [Fact]
    public async Task A_relative_volume_is_taken_from_the_current_directory_and_a_missing_one_is_created()
    {
        var cwd = Directory.CreateDirectory(Path.Combine(farm.Directory, "cwd-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        // farm run from another directory, as a user in a shell would.
        await Tool.RunAsync(farm.Env, "sh", ["-c", "cd \"$0\" && exec \"$@\"", cwd, .. CliProcess.Command, "run", "--rm", "-v", "./made/here:/out", "bb", "sh", "-c", "echo relative > /out/file"]);
        Assert.Equal("relative\n", await File.ReadAllTextAsync(Path.Combine(cwd, "made", "here", "file")));
    }

    [Fact]
    public async Task A_tmpfs_mount_is_a_writable_tmpfs_and_mount_points_stay_out_of_a_commit()
    {
        var host = Directory.CreateDirectory(Path.Combine(farm.Directory, "vol-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        var name = "mounts-" + Guid.NewGuid().ToString("N")[..8];
        var output = await farm.Ok("run", "--name", name, "-v", $"{host}:/srv/data", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1048576", "bb", "sh", "-c",
            "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; echo s > /scratch/file && echo scratch-ok; echo kept > /kept; echo bound > /srv/data/f");
        Assert.Equal("tmpfs\nscratch-ok\n", output);
        Assert.Equal("bound\n", await File.ReadAllTextAsync(Path.Combine(host, "f")));

        await farm.Ok("commit", name, $"{name}:1");
        var check = await farm.Ok("run", "--rm", $"{name}:1", "sh", "-c", "cat /kept; for p in /scratch /srv; do [ -e $p ] && echo present $p || echo absent $p; done");
        Assert.Equal("kept\nabsent /scratch\nabsent /srv\n", check);
    }

    [Fact]
    public async Task Volumes_and_bind_sources_that_farm_cannot_honour_are_refused_with_FARM5100()
    {
        foreach (string[] args in (string[][])[
            ["-v", "named:/data"],
            ["-v", "/data"],
            ["--mount", "type=bind,source=relative/dir,target=/x"],
            ["--mount", $"type=bind,source={farm.Directory}/absent-{Guid.NewGuid():N},target=/x"],
            ["--mount", "type=volume,source=v,target=/x"],
            ["-v", $"{farm.Directory}:relative"],
        ])
        {
            var refused = await farm.Farm(["run", "--rm", .. args, "bb", "true"]);
            // 125, as docker run's own errors (the container's command never ran).
            Assert.Equal(125, refused.ExitCode);
            Assert.StartsWith("farm: FARM5100: invalid mount", refused.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Entrypoint_replaces_the_images_and_drops_its_CMD_and_a_commit_keeps_it()
    {
        // bb's CMD is sh: with --entrypoint echo and no command, echo gets no arguments.
        Assert.Equal("\n", await farm.Ok("run", "--rm", "--entrypoint", "echo", "bb"));
        Assert.Equal("two words\n", await farm.Ok("run", "--rm", "--entrypoint=echo", "bb", "two", "words"));

        var name = "ep-" + Guid.NewGuid().ToString("N")[..8];
        await farm.Ok("run", "--name", name, "--entrypoint", "echo", "bb", "from-cmd");
        await farm.Ok("commit", name, $"{name}:1");
        var config = JsonNode.Parse(await farm.Ok("inspect", $"{name}:1"))!.AsArray()[0]!["config"]!;
        Assert.Equal("[\"echo\"]", config["Entrypoint"]!.ToJsonString());
        Assert.Equal("[\"from-cmd\"]", config["Cmd"]!.ToJsonString());
        Assert.Equal("from-cmd\n", await farm.Ok("run", "--rm", $"{name}:1"));
        Assert.Equal("other\n", await farm.Ok("run", "--rm", $"{name}:1", "other"));

        // An empty --entrypoint clears the image's, so the command runs alone.
        Assert.Equal("cleared\n", await farm.Ok("run", "--rm", "--entrypoint", "", $"{name}:1", "echo", "cleared"));
    }
}
