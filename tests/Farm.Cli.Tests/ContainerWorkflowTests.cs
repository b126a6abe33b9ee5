using System.Text.Json.Nodes;
using Farm.Oci.Net;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// The seed's walk-through, end to end as a user does it: a web server from a small base image, a page added by
/// exec, commit, run the new image, push after login, and the pushed image checked with podman and skopeo.
/// </summary>
public sealed class ContainerWorkflowTests(ContainerFixture farm) : IClassFixture<ContainerFixture>
{
    [Fact]
    public async Task Run_exec_commit_run_again_push_and_podman_serves_the_same_page()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        var page = $"hello from farm {Guid.NewGuid():N}\n";
        var image = $"{TestRegistries.Basic}/t{Guid.NewGuid():N}/web:1.0.0";

        var port = FreePorts.Tcp();
        var id = (await farm.Ok("run", "-d", "--name", "web", "-p", $"{port}:80", "bb", "httpd", "-f", "-p", "80", "-h", "/www")).Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);
        Assert.Contains($"0.0.0.0:{port}->80/tcp", await farm.Ok("ps"), StringComparison.Ordinal);

        await farm.Ok("exec", "web", "sh", "-c", $"printf '{page.TrimEnd()}\\n' > /www/index.html");
        await ContainerFixture.ServesAsync(port, "index.html", page);

        var commit = await farm.Farm("commit", "-a", "Jane Doe <jane@example.com>", "-m", "add the home page",
            "-c", "CMD [\"httpd\",\"-f\",\"-p\",\"80\",\"-h\",\"/www\"]", "web", image);
        Assert.True(commit.ExitCode == 0, commit.Stderr);
        // Paused through the cgroup freezer, so no warning about committing a running container.
        Assert.Equal("", commit.Stderr);
        var imageId = commit.Stdout.Trim();
        Assert.StartsWith("sha256:", imageId, StringComparison.Ordinal);
        Assert.Contains(imageId[7..19], await farm.Ok("images"), StringComparison.Ordinal);
        await farm.Ok("rm", "-f", "web");
        Assert.DoesNotContain("web", await farm.Ok("ps", "-a"), StringComparison.Ordinal);

        // The new image serves the page by itself: CMD from -c, index.html from the committed layer.
        var port2 = FreePorts.Tcp();
        await farm.Ok("run", "-d", "--name", "web2", "-p", $"127.0.0.1:{port2}:80", image);
        await ContainerFixture.ServesAsync(port2, "index.html", page);
        await farm.Ok("rm", "-f", "web2");

        await FarmCli.RunAsync(farm.Env, TestRegistries.BasicPassword + "\n", "login", "-u", TestRegistries.BasicUser, "--password-stdin", TestRegistries.Basic);
        Assert.Contains("digest: sha256:", await farm.Ok("push", image), StringComparison.Ordinal);

        var creds = $"{TestRegistries.BasicUser}:{TestRegistries.BasicPassword}";
        await Tool.RunAsync("podman", "pull", "--tls-verify=false", "--creds", creds, image);
        try
        {
            var served = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", image, "cat", "/www/index.html");
            Assert.Equal(page, served);
        }
        finally
        {
            await Tool.RunAsync("podman", "rmi", "-f", image);
        }

        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--config", "--tls-verify=false", "--creds", creds, $"docker://{image}"))!;
        Assert.Equal("Jane Doe <jane@example.com>", (string?)config["author"]);
        var last = config["history"]!.AsArray()[^1]!;
        Assert.Equal("add the home page", (string?)last["comment"]);
        Assert.Equal("Jane Doe <jane@example.com>", (string?)last["author"]);
        Assert.Equal("[\"httpd\",\"-f\",\"-p\",\"80\",\"-h\",\"/www\"]", config["config"]!["Cmd"]!.ToJsonString());
    }
}
