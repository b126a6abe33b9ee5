using System.Diagnostics;
using System.Globalization;
using System.Text;
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
    public async Task No_process_of_the_farm_prints_the_token_or_the_RabbitMQ_password()
    {
        // A build first, so that the logs hold a submission, a job and a push, not only the start-up.
        var marker = Guid.NewGuid().ToString("N")[..10];
        var result = await farm.ClientAsync("build", "--farm", farm.Coordinator2.Url, "--progress", "plain", "--push", "-t", $"{farm.Repository}/secrets:{marker}", Context(marker, $"echo {marker}"));
        Assert.True(result.ExitCode == 0, $"{result}{farm.Diagnostics()}");

        var output = farm.Output();
        Assert.DoesNotContain(farm.Token, output, StringComparison.Ordinal);
        Assert.DoesNotContain(farm.Hosts.RabbitMqPassword, output, StringComparison.Ordinal);
        Assert.DoesNotContain(farm.Token, result.Stdout + result.Stderr, StringComparison.Ordinal);
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
        FarmHosts.Host? host = null;
        await Wait.UntilAsync(async () =>
        {
            foreach (var (candidate, worker) in farm.Workers)
            {
                if ((await worker.ContainersAsync()).Count > 0)
                {
                    host = candidate;
                    return true;
                }
            }

            return false;
        }, TimeSpan.FromSeconds(30), () => "a worker running the step's container");
        await farm.CutLinkAsync(host!);
        var cut = Stopwatch.StartNew();

        // RabbitMQ misses the worker's heartbeats and hands the job to another worker, which builds the layer.
        var exit = await cli.ExitCodeAsync(TimeSpan.FromMinutes(5), farm.Diagnostics);

        Assert.True(exit == 0, $"farm exited {exit}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        Assert.StartsWith("{\"type\":\"BuildFinished\"", cli.Stdout.Last(), StringComparison.Ordinal);
        // The step started twice: on the worker cut off, then again on another.
        Assert.Equal(2, cli.Stdout.Count(l => IsLog(l, "started-" + marker)));
        Assert.Equal($"built across hosts {marker}\n", await RunImageAsync(image));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"link cut: {host!.Role}'s link cut mid-step; the build finished {cut.Elapsed.TotalSeconds:0.0} s later (heartbeat {MultiHostFarmFixture.Heartbeat.TotalSeconds} s, step 15 s)"));
    }

    [Fact]
    public async Task A_worker_host_added_mid_build_takes_the_jobs_waiting_in_the_queue()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/scaled:{marker}";
        const int Stages = 6;
        // Every stage's step waits for a gate file on the client host's file server: the first three hold the three
        // workers, the rest wait in the queue until a worker comes; the gate opens once the new worker took one.
        var gate = Directory.CreateDirectory(Path.Combine(farm.Directory, "gate-" + marker)).FullName;
        await using var server = await farm.Hosts.ServeFilesAsync(farm.Hosts.Client, gate, 8000);
        var context = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + marker)).FullName;
        var dockerfile = new StringBuilder();
        foreach (var i in Enumerable.Range(1, Stages))
        {
            dockerfile.Append(CultureInfo.InvariantCulture, $"FROM {farm.Base} AS s{i}\n");
            dockerfile.Append(CultureInfo.InvariantCulture, $"RUN echo started-{i}-{marker} && until wget -q -O /dev/null http://{farm.Hosts.Client.Address}:8000/go; do sleep 0.2; done && echo {i} > /s{i}\n");
        }

        dockerfile.Append(CultureInfo.InvariantCulture, $"FROM {farm.Base}\n");
        foreach (var i in Enumerable.Range(1, Stages))
        {
            dockerfile.Append(CultureInfo.InvariantCulture, $"COPY --from=s{i} /s{i} /s{i}\n");
        }

        dockerfile.Append("CMD [\"cat\", \"/s1\", \"/s2\", \"/s3\", \"/s4\", \"/s5\", \"/s6\"]\n");
        File.WriteAllText(Path.Combine(context, "Dockerfile"), dockerfile.ToString());

        using var cli = RunningCli.StartOnHost(farm.Hosts.Client.Netns, farm.Env(farm.Token), "build", "--farm", farm.Coordinator2.Url, "--progress", "rawjson", "--push", "-t", image, context);
        int Started() => Enumerable.Range(1, Stages).Count(i => cli.Stdout.Any(l => IsLog(l, $"started-{i}-{marker}")));
        var busy = farm.ReachableWorkers;
        try
        {
            await Wait.UntilAsync(() => Started() == busy, TimeSpan.FromMinutes(3),
                () => $"{busy} steps to start on the {busy} workers{Environment.NewLine}{cli}{farm.Diagnostics()}");

            farm.StartWorker(farm.Hosts.Worker4);
            await Wait.UntilAsync(() => Started() == busy + 1, TimeSpan.FromMinutes(2),
                () => $"the worker added on {farm.Hosts.Worker4.Address} to start a waiting step{Environment.NewLine}{cli}{farm.Diagnostics()}");
        }
        finally
        {
            // Opened whatever happened above: steps left waiting on it would hold the workers the next tests need.
            await File.WriteAllTextAsync(Path.Combine(gate, "go"), "go\n");
        }

        var exit = await cli.ExitCodeAsync(TimeSpan.FromMinutes(4), farm.Diagnostics);

        Assert.True(exit == 0, $"farm exited {exit}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        Assert.True(
            cli.Stdout.Any(l => l.StartsWith("{\"type\":\"StepFinished\"", StringComparison.Ordinal) && l.Contains($"\"worker\":\"{farm.WorkerName(farm.Hosts.Worker4)}\"", StringComparison.Ordinal)),
            $"no step finished on {farm.WorkerName(farm.Hosts.Worker4)} ({busy} workers were busy when it started){Environment.NewLine}{string.Join(Environment.NewLine, cli.Stdout.Where(l => l.StartsWith("{\"type\":\"StepFinished\"", StringComparison.Ordinal)))}{Environment.NewLine}{cli}{farm.Diagnostics()}");
        Assert.Equal("1\n2\n3\n4\n5\n6\n", await RunImageAsync(image));
    }

    /// <summary>A rawjson line of the step's output line <paramref name="text"/>.</summary>
    private static bool IsLog(string line, string text) =>
        line.StartsWith("{\"type\":\"StepLog\"", StringComparison.Ordinal) && line.Contains($"\"line\":\"{text}\"", StringComparison.Ordinal);
}
