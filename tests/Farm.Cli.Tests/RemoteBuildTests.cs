using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary><c>farm build --farm</c>, <c>farm submit</c>, <c>status</c> and <c>logs</c> against a coordinator and a worker running as processes.</summary>
public sealed class RemoteBuildTests(RemoteFarmFixture farm) : IClassFixture<RemoteFarmFixture>
{
    private string Context(string marker)
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            COPY msg.txt /msg.txt
            RUN echo "remote-output {marker}" && cat /msg.txt
            CMD ["cat", "/msg.txt"]
            """);
        File.WriteAllText(Path.Combine(dir, "msg.txt"), $"built remotely {marker}\n");
        return dir;
    }

    [Fact]
    public async Task Ctrl_C_cancels_the_build_on_the_remote_coordinator_and_its_worker_stops_the_step()
    {
        var marker = "farm-remote-cancel-" + Guid.NewGuid().ToString("N")[..12];
        var context = Directory.CreateTempSubdirectory("farm-remote-cancel-").FullName;
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {farm.Base}\nRUN echo started && sleep 120 && echo {marker}\n");

        await CancelledBuild.RunAsync(farm.Env, marker, "build", "--progress", "plain", context);
    }

    [Fact]
    public async Task Build_on_a_remote_farm_shows_the_same_progress_and_pushes_an_image_podman_runs()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var image = $"{farm.Repository}/remote:{marker}";

        var result = await farm.Farm("build", "--progress", "plain", "--push", "-t", image, Context(marker));

        Assert.True(result.ExitCode == 0, result.Stderr + farm.Diagnostics());
        Assert.Matches(new Regex($@"^#\d+ \d+\.\d{{3}} remote-output {marker}$", RegexOptions.Multiline), result.Stderr);
        Assert.Matches(new Regex(@"^#\d+ \[stage-0 3/4\] RUN echo", RegexOptions.Multiline), result.Stderr);
        Assert.Contains($"pushed {image}", result.Stderr, StringComparison.Ordinal);
        Assert.Equal($"built remotely {marker}\n", await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image));
        await Tool.RunAsync("podman", "rmi", "-f", image);

        var again = await farm.Farm("build", "--progress", "rawjson", "--push", "-t", image, Context(marker));
        Assert.True(again.ExitCode == 0, again.Stderr);
        var finished = again.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Where(e => (string?)e["type"] == "StepFinished").ToList();
        Assert.Equal(2, finished.Count);
        Assert.All(finished, e => Assert.True((bool)e["outcome"]!["cached"]!));
    }

    [Fact]
    public async Task A_secret_passed_to_a_remote_farm_reaches_the_step_on_its_worker_and_not_the_output()
    {
        var marker = "farm-remote-secret-" + Guid.NewGuid().ToString("N")[..12];
        var context = Directory.CreateTempSubdirectory("farm-remote-secret-").FullName;
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {farm.Base}\nRUN --mount=type=secret,id=tok,required=true echo {marker} $(wc -c < /run/secrets/tok) bytes\n");
        var value = "value-" + Guid.NewGuid().ToString("N");
        var secret = Path.Combine(context, "tok");
        await File.WriteAllTextAsync(secret, value);

        var result = await farm.Farm("build", "--progress", "plain", "--secret", $"id=tok,src={secret}", context);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"{marker} {value.Length} bytes", result.Stdout + result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(value, result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_shared_farm_grants_no_host_network_unless_its_operator_allows_it()
    {
        var context = Directory.CreateTempSubdirectory("farm-remote-host-").FullName;
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {farm.Base}\nRUN --network=host true\n");

        var result = await farm.Farm("build", "--progress", "plain", "--allow", "network.host", context);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FARM4220: this farm does not grant the network.host entitlement (it grants none)", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_prints_an_id_that_status_and_logs_answer_for()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];

        var submitted = await farm.Farm("submit", Context(marker));

        Assert.True(submitted.ExitCode == 0, submitted.Stderr);
        var id = submitted.Stdout.Trim();
        Assert.True(Guid.TryParse(id, out _), $"farm submit printed '{id}', not a build id");
        string status = string.Empty;
        await Wait.UntilAsync(
            async () =>
            {
                var result = await farm.Farm("status", id);
                status = result.Stdout + result.Stderr;
                return result.ExitCode == 0 && (string?)JsonNode.Parse(result.Stdout)!["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromSeconds(120),
            () => $"build {id} to end; last status: {status}{farm.Diagnostics()}");
        Assert.Equal("succeeded", (string?)JsonNode.Parse(status)!["status"]);
        var logs = await farm.Farm("logs", id);
        Assert.Equal(0, logs.ExitCode);
        Assert.Contains($"remote-output {marker}", logs.Stdout, StringComparison.Ordinal);

        var unknown = await farm.Farm("status", Guid.NewGuid().ToString());
        Assert.Equal(1, unknown.ExitCode);
        Assert.StartsWith("farm: FARM5014: no build with id", unknown.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logs_tail_shows_the_last_lines_of_a_builds_output_and_follows_from_there()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var context = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-tail-" + marker)).FullName;
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {farm.Base}\nRUN for i in 1 2 3 4 5; do echo {marker}-$i; done\n");
        var built = await farm.Farm("build", "--progress", "rawjson", context);
        Assert.True(built.ExitCode == 0, built.ToString());
        var id = new FarmBuild("tail", string.Empty, marker, built).Id;
        var all = (await farm.Farm("logs", id)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, all.Count(l => l.Contains(marker, StringComparison.Ordinal)));

        // The lines in the order the build's log has them (a step's output lines travel apart and may arrive out of order).
        var two = await farm.Farm("logs", "--tail", "2", id);
        var followed = await farm.Farm("logs", "-f", "-n", "2", id);
        var none = await farm.Farm("logs", "--tail", "0", id);
        var more = await farm.Farm("logs", "--tail", "1000", id);

        Assert.Equal(string.Join("\n", all[^2..]) + "\n", two.Stdout);
        Assert.Equal(two.Stdout, followed.Stdout);
        Assert.Equal(string.Empty, none.Stdout);
        Assert.Equal(string.Join("\n", all) + "\n", more.Stdout);
    }

    [Fact]
    public async Task Logs_since_and_timestamps_work_for_a_builds_output_through_the_farm()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];
        var context = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-since-" + marker)).FullName;
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), BuildLogTimes.Dockerfile(farm.Base, marker));
        var built = await farm.Farm("build", "--progress", "rawjson", context);
        Assert.True(built.ExitCode == 0, built.ToString());

        await BuildLogTimes.CheckAsync(farm.Farm, BuildLogTimes.Id(built), marker);
    }

    [Fact]
    public async Task Submit_wait_follows_the_build_to_its_end()
    {
        var marker = Guid.NewGuid().ToString("N")[..8];

        var result = await farm.Farm("submit", "--wait", "--progress", "plain", Context(marker));

        Assert.True(result.ExitCode == 0, result.Stderr + farm.Diagnostics());
        Assert.Matches(new Regex($@"^#\d+ \d+\.\d{{3}} remote-output {marker}$", RegexOptions.Multiline), result.Stderr);
        Assert.Matches(new Regex(@"^#\d+ writing image sha256:[0-9a-f]{64}$", RegexOptions.Multiline), result.Stderr);
    }
}
