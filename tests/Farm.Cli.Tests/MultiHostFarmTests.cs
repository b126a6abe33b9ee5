using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Farm.Testing;
using Xunit.Abstractions;

namespace Farm.Cli.Tests;

/// <summary>
/// A farm deployed across machines (docs/architecture.md, "Failure model"; issue 16): every process on its own
/// simulated host (<see cref="MultiHostFarmFixture"/>), the CLI on a client host. What a user of such a farm does
/// and meets: a build with <c>--farm</c>, one sent by queue message, a coordinator machine dying mid-build.
/// </summary>
public sealed class MultiHostFarmTests(MultiHostFarmFixture farm, ITestOutputHelper output) : IClassFixture<MultiHostFarmFixture>
{
    private string Context(string marker, string run)
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + marker)).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            COPY msg.txt /msg.txt
            RUN {run}
            CMD ["cat", "/msg.txt"]
            """);
        File.WriteAllText(Path.Combine(dir, "msg.txt"), $"built across hosts {marker}\n");
        return dir;
    }

    /// <summary>What the image prints when run by podman on this machine, pulled from the services registry.</summary>
    private static async Task<string> RunImageAsync(string image)
    {
        try
        {
            return await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", image);
        }
        finally
        {
            await Tool.RunAsync("podman", "rmi", "-f", image);
        }
    }

    [Fact]
    public async Task A_build_from_the_client_host_with_farm_runs_on_the_worker_hosts_and_pushes_to_the_services_registry()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/remote:{marker}";

        var result = await farm.ClientAsync("build", "--farm", farm.Coordinator2.Url, "--progress", "plain", "--push", "-t", image, Context(marker, $"echo on-a-worker-host-{marker}"));

        Assert.True(result.ExitCode == 0, $"{result}{farm.Diagnostics()}");
        Assert.Matches(new Regex($@"^#\d+ \d+\.\d{{3}} on-a-worker-host-{marker}$", RegexOptions.Multiline), result.Stderr);
        Assert.Equal($"built across hosts {marker}\n", await RunImageAsync(image));
    }

    [Fact]
    public async Task A_client_without_the_token_is_refused_by_a_coordinator_that_listens_beyond_loopback()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];

        var result = await CliProcess.RunAsync(farm.Env(null), TimeSpan.FromMinutes(2), null, ["build", "--farm", farm.Coordinator2.Url, "--progress", "plain", Context(marker, "true")], farm.Hosts.Client.Netns);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("FARM4230", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_build_submitted_by_queue_message_from_the_client_host_is_built_and_pushed()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/queued:{marker}";

        // Published to RabbitMQ on the services host; followed on the second coordinator.
        var result = await farm.ClientAsync("submit", "--wait", "--farm", farm.Coordinator2.Url, "--progress", "plain", "--push", "-t", image, Context(marker, $"echo queued-{marker}"));

        Assert.True(result.ExitCode == 0, $"{result}{farm.Diagnostics()}");
        Assert.Matches(new Regex($@"^#\d+ \d+\.\d{{3}} queued-{marker}$", RegexOptions.Multiline), result.Stderr);
        Assert.Equal($"built across hosts {marker}\n", await RunImageAsync(image));
    }

    [Fact]
    public async Task When_every_process_of_the_coordinator_host_running_a_build_is_killed_the_other_coordinator_finishes_it()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/takeover:{marker}";
        var (first, second) = (farm.Coordinator1, farm.Coordinator2);

        // Submitted to the first coordinator, which runs it; the CLI knows the second one too.
        using var cli = RunningCli.StartOnHost(farm.Hosts.Client.Netns, farm.Env(farm.Token), "build", "--farm", $"{first.Url},{second.Url}", "--progress", "rawjson", "--push", "-t", image,
            Context(marker, $"echo started-{marker} && sleep 20 && echo done-{marker}"));
        await Wait.UntilAsync(() => cli.Stdout.Any(l => IsLog(l, "started-" + marker)), TimeSpan.FromMinutes(3),
            () => $"the RUN step to print started-{marker}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        await MultiHostFarmFixture.KillHostAsync(farm.Hosts.Coord1);
        var killed = Stopwatch.StartNew();
        await Wait.UntilAsync(() => first.HasExited, TimeSpan.FromSeconds(30), () => "the killed coordinator to exit");

        // The second coordinator resumes the build and the CLI follows it there to its end.
        await Wait.UntilAsync(() => cli.Stdout.Any(l => l.StartsWith("{\"type\":\"BuildResumed\"", StringComparison.Ordinal)), TimeSpan.FromMinutes(3),
            () => $"the build to be resumed on {second.Url}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        var resumed = killed.Elapsed;
        var exit = await cli.ExitCodeAsync(TimeSpan.FromMinutes(4), farm.Diagnostics);
        var finished = killed.Elapsed;

        Assert.True(exit == 0, $"farm exited {exit}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        Assert.Contains(cli.Stderr, l => l.StartsWith($"farm: lost {first.Url} (", StringComparison.Ordinal) && l.Contains($"on {second.Url} after event ", StringComparison.Ordinal));
        Assert.StartsWith("{\"type\":\"BuildFinished\"", cli.Stdout.Last(), StringComparison.Ordinal);
        Assert.Equal($"built across hosts {marker}\n", await RunImageAsync(image));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"takeover: build resumed on the second coordinator {resumed.TotalSeconds:0.0} s after the first coordinator's host was killed; build finished {finished.TotalSeconds:0.0} s after (probe timeout {MultiHostFarmFixture.ProbeTimeout.TotalSeconds} s x {MultiHostFarmFixture.MissedProbes}, resume check {MultiHostFarmFixture.ResumeCheckPeriod.TotalSeconds} s)"));
    }

    [Fact]
    public async Task When_the_link_of_the_worker_host_running_a_job_is_cut_the_job_is_redone_on_another_worker_and_the_build_succeeds()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/linkcut:{marker}";

        using var cli = RunningCli.StartOnHost(farm.Hosts.Client.Netns, farm.Env(farm.Token), "build", "--farm", farm.Coordinator2.Url, "--progress", "rawjson", "--push", "-t", image,
            Context(marker, $"echo started-{marker} && sleep 15 && echo done-{marker}"));
        await Wait.UntilAsync(() => cli.Stdout.Any(l => IsLog(l, "started-" + marker)), TimeSpan.FromMinutes(3),
            () => $"the RUN step to print started-{marker}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        // The worker whose runc runs the step: its host goes off the network, the worker and its step still running.
        WorkerProcess? running = null;
        await Wait.UntilAsync(async () =>
        {
            foreach (var worker in farm.Workers)
            {
                if ((await worker.ContainersAsync()).Count > 0)
                {
                    running = worker;
                    return true;
                }
            }

            return false;
        }, TimeSpan.FromSeconds(30), () => "a worker running the step's container");
        var host = new[] { farm.Hosts.Worker1, farm.Hosts.Worker2, farm.Hosts.Worker3 }[farm.Workers.ToList().IndexOf(running!)];
        await farm.Hosts.CutLinkAsync(host);
        var cut = Stopwatch.StartNew();

        // RabbitMQ misses the worker's heartbeats and hands the job to another worker, which builds the layer.
        var exit = await cli.ExitCodeAsync(TimeSpan.FromMinutes(5), farm.Diagnostics);

        Assert.True(exit == 0, $"farm exited {exit}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        Assert.StartsWith("{\"type\":\"BuildFinished\"", cli.Stdout.Last(), StringComparison.Ordinal);
        // The step started twice: on the worker cut off, then again on another.
        Assert.Equal(2, cli.Stdout.Count(l => IsLog(l, "started-" + marker)));
        Assert.Equal($"built across hosts {marker}\n", await RunImageAsync(image));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"link cut: {host.Role}'s link cut mid-step; the build finished {cut.Elapsed.TotalSeconds:0.0} s later (heartbeat {MultiHostFarmFixture.Heartbeat.TotalSeconds} s, step 15 s)"));
    }

    /// <summary>A rawjson line of the step's output line <paramref name="text"/>.</summary>
    private static bool IsLog(string line, string text) =>
        line.StartsWith("{\"type\":\"StepLog\"", StringComparison.Ordinal) && line.Contains($"\"line\":\"{text}\"", StringComparison.Ordinal);
}
