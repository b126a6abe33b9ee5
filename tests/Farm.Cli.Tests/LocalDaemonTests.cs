using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// The local farm daemon as a user meets it: started on demand by farm build (one, however many CLIs race), restarted
/// after it was killed, cancelling a build on Ctrl-C, and refusing a user who may not use its socket.
/// </summary>
public sealed class LocalDaemonTests : IAsyncLifetime
{
    private readonly BuildFixture _fixture = new();

    public Task InitializeAsync() => _fixture.InitializeAsync();

    public Task DisposeAsync() => _fixture.DisposeAsync();

    [Fact]
    public async Task Two_CLIs_racing_start_one_daemon_and_both_build()
    {
        await _fixture.Farm("daemon", "stop");
        var context = _fixture.Context(("Dockerfile", $"FROM {BuildFixture.Base}\nLABEL race=1\n"));

        var builds = await Task.WhenAll(
            _fixture.Farm("build", "--progress", "plain", "-t", "race:a", context),
            _fixture.Farm("build", "--progress", "plain", "-t", "race:b", context));

        Assert.All(builds, b => Assert.True(b.ExitCode == 0, b.ToString()));
        Assert.Single(DaemonPids());
        var images = await _fixture.Farm("images");
        Assert.Contains("race", images.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Farm_version_names_the_client_and_the_running_daemon_without_starting_one()
    {
        await _fixture.Farm("daemon", "stop");
        await Wait.UntilAsync(() => DaemonPids().Count == 0, TimeSpan.FromSeconds(30), () => "the stopped daemon's process to end");
        var stopped = Ok(await _fixture.Farm("version"));
        Assert.Matches(@"^Client: farm \d+\.\d+\.\d+", stopped.Stdout);
        Assert.Contains("Daemon: not running", stopped.Stdout, StringComparison.Ordinal);
        Assert.Empty(DaemonPids());

        Ok(await _fixture.Farm("daemon", "start"));
        var status = JsonNode.Parse(Ok(await _fixture.Farm("daemon", "status")).Stdout)!;
        var running = Ok(await _fixture.Farm("version"));
        Assert.Contains($"Daemon: {(string?)status["version"]} (pid {(int)status["pid"]!},", running.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_killed_daemon_is_restarted_by_the_next_command_which_says_so()
    {
        var context = _fixture.Context(("Dockerfile", $"FROM {BuildFixture.Base}\nLABEL killed=1\n"));
        Ok(await _fixture.Farm("build", "--progress", "plain", context));
        var before = await PidAsync();

        await Tool.RunAsync("kill", "-KILL", before.ToString(CultureInfo.InvariantCulture));
        await Wait.UntilAsync(() => !Directory.Exists($"/proc/{before}"), TimeSpan.FromSeconds(30), () => $"the daemon {before} to die");
        var again = Ok(await _fixture.Farm("build", "--progress", "plain", context));

        Assert.Contains("starting it again", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, again.Stderr.Split('\n').Count(l => l.StartsWith("farm: ", StringComparison.Ordinal)));
        Assert.NotEqual(before, await PidAsync());
    }

    [Fact]
    public async Task Ctrl_C_cancels_the_build_on_the_daemon_leaving_no_job_running_and_no_image_named()
    {
        var marker = "farm-cancel-" + Guid.NewGuid().ToString("N")[..12];
        var context = _fixture.Context(("Dockerfile", $"FROM {BuildFixture.Base}\nRUN echo started && sleep 120 && echo {marker}\n"));
        await CancelledBuild.RunAsync(_fixture.Env, marker, "build", "--progress", "plain", "-t", "cancelled:1", context);

        var images = await _fixture.Farm("images");
        Assert.DoesNotContain("cancelled", images.Stdout, StringComparison.Ordinal);
        // The command returned once the build ended; the daemon lets go of its run a moment later.
        await Wait.UntilAsync(
            async () => (int)JsonNode.Parse(Ok(await _fixture.Farm("daemon", "status")).Stdout)!["running"]! == 0,
            TimeSpan.FromSeconds(30),
            () => "the daemon to report no build running after the cancelled one");
    }

    [Fact]
    public async Task A_user_who_may_not_use_the_socket_gets_a_clear_error()
    {
        Ok(await _fixture.Farm("daemon", "start"));
        // The state directory is traversable by everyone; only the socket itself is the owner's.
        File.SetUnixFileMode(_fixture.Directory, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(Path.Combine(_fixture.Directory, "state"), (UnixFileMode)0b111_101_101);

        var start = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["--reuid=65534", "--regid=65534", "--clear-groups", .. CliProcess.Command, "daemon", "status"])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HOME"] = "/tmp";
        start.Environment["DOTNET_CLI_HOME"] = "/tmp";
        start.Environment["FARM_STATE_DIR"] = _fixture.Env["FARM_STATE_DIR"];
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.Equal(1, process.ExitCode);
        Assert.Matches(@"^farm: FARM5019: this user may not use the local farm daemon's socket .*farmd\.sock", await stderr);
    }

    private async Task<int> PidAsync()
    {
        var status = JsonNode.Parse(Ok(await _fixture.Farm("daemon", "status")).Stdout)!;
        return (int)status["pid"]!;
    }

    /// <summary>The daemons of this fixture's state directory (their command lines name it).</summary>
    private List<int> DaemonPids() => CancelledBuild.Processes("--Farm:Local:StateDirectory=" + _fixture.Env["FARM_STATE_DIR"]);

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}
