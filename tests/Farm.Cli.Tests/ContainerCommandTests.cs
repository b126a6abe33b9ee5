using System.Diagnostics;
using System.Text.Json.Nodes;
using Farm.Oci.Net;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>farm run/exec/ps/port/logs/stop/start/rm/commit against real runc, overlayfs and slirp4netns.</summary>
public sealed class ContainerCommandTests(ContainerFixture farm) : IClassFixture<ContainerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Publish_all_maps_every_exposed_port_and_farm_port_tells_where()
    {
        await farm.Ok("run", "-d", "-P", "--name", "all", "bb", "httpd", "-f", "-p", "80", "-h", "/www");
        await farm.Ok("exec", "all", "sh", "-c", "echo exposed > /www/index.html");

        var lines = (await farm.Ok("port", "all")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("80/tcp -> 0.0.0.0:", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("81/tcp -> 0.0.0.0:", lines[1], StringComparison.Ordinal);
        var hostPort = int.Parse((await farm.Ok("port", "all", "80")).Trim().Split(':')[1]);
        Assert.Contains($"0.0.0.0:{hostPort}->80/tcp", await farm.Ok("ps"), StringComparison.Ordinal);
        await ContainerFixture.ServesAsync(hostPort, "index.html", "exposed\n");
    }

    [Fact]
    public async Task Network_none_has_only_loopback_and_no_route_while_private_has_a_default_route_but_not_to_host_loopback()
    {
        var none = await farm.Ok("run", "--rm", "--network", "none", "bb", "sh", "-c", "cat /proc/net/dev; echo routes:; ip route; ping -c 1 -W 2 10.0.2.2 || echo unreachable");
        var interfaces = none.Split('\n').Where(l => l.Contains(':', StringComparison.Ordinal) && !l.Contains('|', StringComparison.Ordinal) && !l.StartsWith("routes", StringComparison.Ordinal))
            .Select(l => l.Split(':')[0].Trim()).Where(n => n.Length > 0 && !n.Contains(' ', StringComparison.Ordinal)).ToList();
        Assert.Equal(["lo"], interfaces);
        Assert.Contains("routes:\n", none, StringComparison.Ordinal);
        Assert.DoesNotContain("default", none, StringComparison.Ordinal);
        Assert.EndsWith("unreachable\n", none, StringComparison.Ordinal);

        // A service the host keeps on loopback stays out of reach through the gateway (slirp4netns --disable-host-loopback).
        using var hostOnly = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        hostOnly.Start();
        var hostPort = ((System.Net.IPEndPoint)hostOnly.LocalEndpoint).Port;
        var routed = await farm.Ok("run", "--rm", "bb", "sh", "-c",
            $"cat /proc/net/dev; ip route; cat /etc/resolv.conf; nc -w 5 10.0.2.2 {hostPort} </dev/null && echo host-reached || echo host-refused");
        Assert.Contains("tap0:", routed, StringComparison.Ordinal);
        Assert.Contains("default via 10.0.2.2", routed, StringComparison.Ordinal);
        Assert.Contains("nameserver 10.0.2.3", routed, StringComparison.Ordinal);
        Assert.EndsWith("host-refused\n", routed, StringComparison.Ordinal);
        Assert.False(hostOnly.Pending());
    }

    [Fact]
    public async Task An_interactive_session_in_a_terminal_shows_output_and_the_shell_exit_code_is_farms()
    {
        var socket = $"farm-test-{Guid.NewGuid():N}";
        var env = string.Join(' ', farm.Env.Select(e => $"{e.Key}={e.Value}"));
        try
        {
            await Tmux(socket, "new-session", "-d", "-s", "t", "-x", "160", "-y", "40",
                $"env {env} {CliProcess.CommandText} run -it --rm --name tty bb sh; echo farm-exit=$?; sleep 600");
            await Wait.UntilAsync(async () => (await Pane(socket)).Contains("/ #", StringComparison.Ordinal), Timeout, () => "the busybox prompt '/ #'");

            await Tmux(socket, "send-keys", "-t", "t", "tty && echo answer-$((40+2))", "Enter");
            await Wait.UntilAsync(async () => (await Pane(socket)).Contains("answer-42", StringComparison.Ordinal), Timeout, () => "the command's output 'answer-42'");
            Assert.Contains("/dev/pts/0", await Pane(socket), StringComparison.Ordinal);

            await Tmux(socket, "send-keys", "-t", "t", "exit 5", "Enter");
            await Wait.UntilAsync(async () => (await Pane(socket)).Contains("farm-exit=", StringComparison.Ordinal), Timeout, () => "farm to exit");
            Assert.Contains("farm-exit=5", await Pane(socket), StringComparison.Ordinal);
        }
        finally
        {
            await Process.Start("tmux", ["-L", socket, "kill-server"]).WaitForExitAsync();
        }
    }

    [Fact]
    public async Task A_commit_of_deleted_image_files_replays_the_deletions()
    {
        await farm.Ok("run", "--name", "deleter", "bb", "sh", "-c", "rm /bin/vi && rm -r /www && echo kept > /new.txt");
        await farm.Ok("commit", "-m", "deletions", "deleter", "deleted:1");

        var check = "for p in /bin/vi /www /new.txt /bin/ls; do [ -e $p ] && echo present $p || echo absent $p; done";
        var after = await farm.Ok("run", "--rm", "deleted:1", "sh", "-c", check);
        Assert.Equal("absent /bin/vi\nabsent /www\npresent /new.txt\npresent /bin/ls\n", after);
        var before = await farm.Ok("run", "--rm", "bb", "sh", "-c", check);
        Assert.Equal("present /bin/vi\npresent /www\nabsent /new.txt\npresent /bin/ls\n", before);

        var history = JsonNode.Parse(await farm.Ok("inspect", "deleted:1"))!.AsArray()[0]!["history"]!.AsArray();
        Assert.Equal("deletions", (string?)history[^1]!["comment"]);
        // Runtime mount points (/proc, /etc/hosts, ...) are no change of the container's: they stay out of the layer.
        var stubs = await farm.Ok("run", "--rm", "deleted:1", "sh", "-c", "ls -a /");
        Assert.DoesNotContain(".wh.", stubs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commit_applies_changes_and_keeps_the_run_command()
    {
        await farm.Ok("run", "--name", "changes", "-e", "GREETING=hi", "bb", "sh", "-c", "echo $GREETING > /greeting");
        await farm.Ok("commit", "-a", "A. Author", "-c", "ENV MODE=prod", "-c", "EXPOSE 9000/udp", "-c", "LABEL team=\"build farm\"",
            "-c", "ONBUILD RUN echo child", "-c", "WORKDIR /srv", "-c", "USER nobody", "changes", "changed:1");

        var config = JsonNode.Parse(await farm.Ok("inspect", "changed:1"))!.AsArray()[0]!;
        Assert.Equal("A. Author", (string?)config["author"]);
        var env = config["config"]!["Env"]!.AsArray().Select(e => (string?)e).ToList();
        Assert.Contains("GREETING=hi", env);
        Assert.Contains("MODE=prod", env);
        Assert.Equal("[\"sh\",\"-c\",\"echo $GREETING \\u003E /greeting\"]", config["config"]!["Cmd"]!.ToJsonString());
        Assert.NotNull(config["config"]!["ExposedPorts"]!["9000/udp"]);
        Assert.Equal("build farm", (string?)config["config"]!["Labels"]!["team"]);
        Assert.Equal("[\"RUN echo child\"]", config["config"]!["OnBuild"]!.ToJsonString());
        Assert.Equal("/srv", (string?)config["config"]!["WorkingDir"]);
        Assert.Equal("nobody", (string?)config["config"]!["User"]);

        var refused = await farm.Farm("commit", "-c", "RUN echo no", "changes", "changed:2");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("farm: FARM3107: cannot apply change 'RUN echo no'", refused.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rm_force_leaves_no_mount_process_slirp4netns_or_namespace_behind()
    {
        var id = (await farm.Ok("run", "-d", "-p", $"{FreePorts.Tcp()}:80", "--name", "doomed", "bb", "httpd", "-f", "-p", "80", "-h", "/www")).Trim();
        var dir = Path.Combine(farm.StateDirectory, "containers", id);
        var state = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "config.json")))!;
        var supervisor = (int)state["supervisor"]!["pid"]!;
        var slirp = (int)state["slirp"]!["pid"]!;
        Assert.Contains("slirp4netns", await File.ReadAllTextAsync($"/proc/{slirp}/cmdline"), StringComparison.Ordinal);
        Assert.True(Directory.Exists($"/proc/{supervisor}"));
        Assert.Contains(dir, await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
        var netns = $"/run/netns/farm-{id[..12]}";
        Assert.True(File.Exists(netns));

        await farm.Ok("rm", "-f", "doomed");

        Assert.DoesNotContain(dir, await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
        await Wait.UntilAsync(() => !Directory.Exists($"/proc/{slirp}") && !Directory.Exists($"/proc/{supervisor}"), Timeout, () => "slirp4netns and the supervisor to be gone");
        Assert.False(File.Exists(netns));
        Assert.False(Directory.Exists(dir));
        var runc = await Tool.RunAsync("runc", "--root", Path.Combine(farm.StateDirectory, "runc"), "list", "-q");
        Assert.DoesNotContain(id, runc, StringComparison.Ordinal);
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), p => ReadCmdline(p).Contains(id, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_detached_container_outlives_the_cli_records_its_exit_code_and_output_and_starts_again()
    {
        await farm.Ok("run", "-d", "--name", "job", "bb", "sh", "-c", "echo out-line; echo err-line >&2; sleep 1; exit 7");
        await Wait.UntilAsync(async () => (await farm.Ok("ps", "-a")).Contains("Exited (7)", StringComparison.Ordinal), Timeout, () => "farm ps -a to show Exited (7)");
        Assert.DoesNotContain("job", await farm.Ok("ps"), StringComparison.Ordinal);
        Assert.Equal(["err-line", "out-line"], (await farm.Ok("logs", "job")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));

        await farm.Ok("start", "job");
        // runc copies stdout and stderr through separate pipes, so only each stream keeps its order (as with docker).
        var lines = (await farm.Ok("logs", "-f", "job")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal);
        Assert.Equal(["err-line", "err-line", "out-line", "out-line"], lines);
        Assert.Contains("Exited (7)", await farm.Ok("ps", "-a"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_ends_a_running_container_and_exec_runs_with_env_workdir_and_user()
    {
        var id = (await farm.Ok("run", "-d", "--name", "sleeper", "bb", "sleep", "600")).Trim();
        var exec = await farm.Ok("exec", "-e", "X=y z", "-w", "/tmp", "-u", "nobody", id[..8], "sh", "-c", "echo \"$X\"; pwd; id -u; hostname");
        Assert.Equal($"y z\n/tmp\n65534\n{id[..12]}\n", exec);
        var failing = await farm.Farm("exec", "sleeper", "sh", "-c", "exit 3");
        Assert.Equal(3, failing.ExitCode);

        await farm.Ok("stop", "-t", "1", "sleeper");
        Assert.Matches(@"Exited \(137\)", await farm.Ok("ps", "-a"));
        var notRunning = await farm.Farm("exec", "sleeper", "true");
        Assert.Equal(125, notRunning.ExitCode);
        Assert.StartsWith("farm: FARM3103: container sleeper: is not running", notRunning.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rm_stop_and_start_go_on_past_a_name_that_fails_and_exit_1()
    {
        await farm.Ok("run", "-d", "--name", "past-a", "bb", "sleep", "600");
        await farm.Ok("run", "-d", "--name", "past-b", "bb", "sleep", "600");

        var stopped = await farm.Farm("stop", "-t", "1", "missing-x", "past-a");
        Assert.Equal(1, stopped.ExitCode);
        Assert.StartsWith("farm: FARM3100: no such container: missing-x", stopped.Stderr, StringComparison.Ordinal);
        Assert.Equal("past-a\n", stopped.Stdout);
        Assert.Matches(@"Exited \(137\).*past-a", await farm.Ok("ps", "-a"));

        var started = await farm.Farm("start", "past-a", "missing-y");
        Assert.Equal(1, started.ExitCode);
        Assert.Contains("no such container: missing-y", started.Stderr, StringComparison.Ordinal);
        Assert.Contains("past-a", await farm.Ok("ps"), StringComparison.Ordinal);

        // docker's example: `rm -f missing web` removes web although missing fails first.
        var removed = await farm.Farm("rm", "-f", "missing-z", "past-a", "past-b");
        Assert.Equal(1, removed.ExitCode);
        Assert.Equal("past-a\npast-b\n", removed.Stdout);
        Assert.Single(removed.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var left = await farm.Ok("ps", "-a");
        Assert.DoesNotContain("past-a", left, StringComparison.Ordinal);
        Assert.DoesNotContain("past-b", left, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rmi_refuses_an_image_a_container_uses_and_with_f_untags_it_but_keeps_it_for_the_container()
    {
        await farm.Ok("run", "--name", "maker", "bb", "sh", "-c", "echo mine > /mine.txt");
        await farm.Ok("commit", "maker", "mine:1");
        await farm.Ok("tag", "mine:1", "mine:2");
        await farm.Ok("run", "--name", "user-of-mine", "mine:1", "cat", "/mine.txt");

        // Another name still holds the image: untagging one is fine.
        Assert.Equal("Untagged: docker.io/library/mine:2\n", await farm.Ok("rmi", "mine:2"));

        // Its last name: refused, and a name that fails does not stop the others.
        var refused = await farm.Farm("rmi", "no-such-image:1", "mine:1");
        Assert.Equal(1, refused.ExitCode);
        var errors = refused.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, errors.Length);
        Assert.StartsWith("farm: FARM5001: no such image: no-such-image:1", errors[0], StringComparison.Ordinal);
        Assert.StartsWith("farm: FARM5007: cannot remove mine:1: container user-of-mine uses its image", errors[1], StringComparison.Ordinal);
        Assert.Contains("docker.io/library/mine", await farm.Ok("images"), StringComparison.Ordinal);

        Assert.Equal("Untagged: docker.io/library/mine:1\n", await farm.Ok("rmi", "-f", "mine:1"));
        Assert.DoesNotContain("docker.io/library/mine", await farm.Ok("images"), StringComparison.Ordinal);
        // The container still has its image, unnamed now.
        await farm.Ok("start", "user-of-mine");
        Assert.Contains("mine", await farm.Ok("logs", "-f", "user-of-mine"), StringComparison.Ordinal);
        await farm.Ok("rm", "-f", "user-of-mine", "maker");
    }

    [Fact]
    public async Task Names_must_be_unique_and_unknown_containers_are_named_in_the_error()
    {
        await farm.Ok("run", "--name", "unique", "bb", "true");
        var taken = await farm.Farm("run", "--name", "unique", "bb", "true");
        Assert.Equal(125, taken.ExitCode);
        Assert.StartsWith("farm: FARM3102: the container name 'unique' is already in use", taken.Stderr, StringComparison.Ordinal);

        var missing = await farm.Farm("rm", "nosuch");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("farm: FARM3100: no such container: nosuch", missing.Stderr, StringComparison.Ordinal);

        var exitCode = await farm.Farm("run", "--rm", "bb", "sh", "-c", "exit 42");
        Assert.Equal(42, exitCode.ExitCode);

        var unknown = await farm.Farm("run", "--bogus", "bb", "true");
        Assert.Equal(125, unknown.ExitCode);
        Assert.StartsWith("farm: FARM5050: farm run: unknown flag --bogus", unknown.Stderr, StringComparison.Ordinal);
        var badBool = await farm.Farm("run", "--rm=maybe", "bb", "true");
        Assert.StartsWith("farm: FARM5050: farm run: --rm takes true or false, not 'maybe'", badBool.Stderr, StringComparison.Ordinal);

        // After the image, flags belong to the container's command: -h and -p are busybox's here.
        Assert.Equal("-h -p 80\n", await farm.Ok("run", "--rm", "bb", "echo", "-h", "-p", "80"));
    }

    [Fact]
    public async Task A_missing_command_exits_127_with_the_reason_in_the_foreground_and_detached()
    {
        var foreground = await farm.Farm("run", "--rm", "bb", "no-such-command");
        Assert.Equal(127, foreground.ExitCode);
        Assert.Contains("farm: FARM3108: container ", foreground.Stderr, StringComparison.Ordinal);
        Assert.Contains("\"no-such-command\": executable file not found", foreground.Stderr, StringComparison.Ordinal);

        var detached = await farm.Farm("run", "-d", "--name", "missing", "bb", "no-such-command");
        Assert.Equal(127, detached.ExitCode);
        Assert.StartsWith("farm: FARM3108: container missing could not run 'no-such-command'", detached.Stderr, StringComparison.Ordinal);
        Assert.Contains("Exited (127)", await farm.Ok("ps", "-a"), StringComparison.Ordinal);
        Assert.Contains("FARM3108", await farm.Ok("logs", "missing"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_runs_of_a_new_image_all_succeed()
    {
        await farm.Ok("run", "--name", "seed", "bb", "sh", "-c", "echo seeded > /seed.txt");
        await farm.Ok("commit", "seed", "seeded:1");

        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => farm.Farm("run", "--rm", "seeded:1", "sh", "-c", $"cat /seed.txt; echo run-{i}")));

        for (var i = 0; i < runs.Length; i++)
        {
            Assert.True(runs[i].ExitCode == 0, runs[i].Stderr);
            Assert.Equal($"seeded\nrun-{i}\n", runs[i].Stdout);
        }
    }

    [Fact]
    public async Task Stop_sends_the_images_stop_signal_first_and_a_graceful_exit_is_recorded()
    {
        await farm.Ok("run", "--name", "sig-base", "bb", "true");
        await farm.Ok("commit", "-c", "STOPSIGNAL SIGUSR1", "sig-base", "usr1:1");
        await farm.Ok("run", "-d", "--name", "graceful", "usr1:1", "sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo ready; while true; do sleep 0.1; done");
        await Wait.UntilAsync(async () => (await farm.Ok("logs", "graceful")).Contains("ready", StringComparison.Ordinal), Timeout, () => "the trap to be set");

        await farm.Ok("stop", "-t", "300", "graceful");

        Assert.Equal("ready\ngot-usr1\n", await farm.Ok("logs", "graceful"));
        Assert.Contains("Exited (0)", await farm.Ok("ps", "-a"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Standard_input_reaches_the_container_only_with_i()
    {
        var piped = await FarmCli.RunAsync(farm.Env, "line one\nline two\n", "run", "-i", "--rm", "bb", "sh", "-c", "wc -l");
        Assert.Equal(0, piped.ExitCode);
        Assert.Equal("2", piped.Stdout.Trim());

        var closed = await FarmCli.RunAsync(farm.Env, "ignored\n", "run", "--rm", "bb", "sh", "-c", "wc -l");
        Assert.Equal("0", closed.Stdout.Trim());

        await farm.Ok("run", "-d", "--name", "stdin-exec", "bb", "sleep", "600");
        var exec = await FarmCli.RunAsync(farm.Env, "a\nb\nc\n", "exec", "-i", "stdin-exec", "wc", "-l");
        Assert.Equal("3", exec.Stdout.Trim());
    }

    [Fact]
    public async Task A_container_whose_supervisor_was_killed_is_ended_cleaned_up_and_starts_again()
    {
        var port = FreePorts.Tcp();
        var id = (await farm.Ok("run", "-d", "--name", "orphan", "-p", $"{port}:80", "bb", "httpd", "-f", "-p", "80", "-h", "/www")).Trim();
        await farm.Ok("exec", "orphan", "sh", "-c", "echo still here > /www/index.html");
        await ContainerFixture.ServesAsync(port, "index.html", "still here\n");
        var state = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(farm.StateDirectory, "containers", id, "config.json")))!;
        var slirp = (int)state["slirp"]!["pid"]!;
        using (var supervisor = Process.GetProcessById((int)state["supervisor"]!["pid"]!))
        {
            supervisor.Kill();
            await supervisor.WaitForExitAsync();
        }

        Assert.Contains("Exited (137)", await farm.Ok("ps", "-a"), StringComparison.Ordinal);
        await Wait.UntilAsync(() => !Directory.Exists($"/proc/{slirp}"), Timeout, () => "the orphaned slirp4netns to be stopped");
        Assert.False(File.Exists($"/run/netns/farm-{id[..12]}"));

        // Same host port again: nothing of the first run holds it; the upper layer (index.html) is kept.
        await farm.Ok("start", "orphan");
        await ContainerFixture.ServesAsync(port, "index.html", "still here\n");
    }

    [Fact]
    public async Task A_foreground_run_shows_its_streams_apart_and_records_them_for_logs()
    {
        var run = await farm.Farm("run", "--name", "fg", "bb", "sh", "-c", "echo fg-out; echo fg-err >&2; exit 4");

        Assert.Equal(4, run.ExitCode);
        Assert.Equal("fg-out\n", run.Stdout);
        Assert.Equal("fg-err\n", run.Stderr);
        Assert.Equal(["fg-err", "fg-out"], (await farm.Ok("logs", "fg")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains("Exited (4)", await farm.Ok("ps", "-a"), StringComparison.Ordinal);
    }

    private static string ReadCmdline(string procDir)
    {
        try
        {
            return File.ReadAllText(Path.Combine(procDir, "cmdline"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static Task<string> Tmux(string socket, params string[] args) => Tool.RunAsync("tmux", ["-L", socket, .. args]);

    private static Task<string> Pane(string socket) => Tmux(socket, "capture-pane", "-p", "-t", "t");
}
