using Farm.Containers.Sandbox;

using Farm.Oci.IO;

using Farm.Testing;

namespace Farm.Containers.Tests;

[Collection(SandboxCollection.Name)]
/// <summary>RUN steps in throw-away containers through <see cref="SandboxRunner"/> and the runc executor, against the real runc.</summary>
public sealed class SandboxRunnerTests(SandboxFixture fx)
{
    [Fact]
    public async Task Echo_output_streams_to_the_callback_by_stream()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (result, output) = await fx.RunAsync(snap, ["sh", "-c", "echo hi; echo oops >&2"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(new OutputLine(OutputStream.Stdout, "hi"), output);
        Assert.Contains(new OutputLine(OutputStream.Stderr, "oops"), output);
    }

    [Fact]
    public async Task A_failing_command_reports_its_exit_code_and_the_tail_of_its_output()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var e = await Assert.ThrowsAsync<RunFailedException>(
            () => fx.RunAsync(snap, ["sh", "-c", "for i in $(seq 1 30); do echo line$i; done; exit 3"]));

        Assert.Equal(3, e.ExitCode);
        Assert.Equal("FARM3002", e.Code);
        Assert.Equal(20, e.OutputTail.Count);
        // One stream only: the order across stdout and stderr depends on which pipe is read first.
        Assert.Equal("line11", e.OutputTail[0].Text);
        Assert.Equal(new OutputLine(OutputStream.Stdout, "line30"), e.OutputTail[^1]);
        Assert.Contains("exited with code 3", e.Message);
        Assert.Contains("line30", e.Message);
    }

    [Fact]
    public async Task Proc_shows_only_the_containers_processes_with_the_command_as_pid_1()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (_, output) = await fx.RunAsync(snap, ["ls", "/proc"]);

        var pids = SandboxFixture.Stdout(output).Split('\n').Where(e => e.All(char.IsAsciiDigit)).ToList();
        Assert.Equal(["1"], pids);
    }

    [Fact]
    public async Task Writes_to_root_and_etc_land_in_the_upperdir_not_on_the_host_or_the_layer()
    {
        var marker = "farm-sandbox-" + Guid.NewGuid().ToString("N");
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        await fx.RunAsync(snap, ["sh", "-c", $"echo x > /{marker}; echo y > /etc/{marker}; rm /etc/motd"]);
        snap.Unmount();

        Assert.False(File.Exists("/" + marker));
        Assert.False(File.Exists("/etc/" + marker));
        Assert.False(File.Exists(Path.Combine(fx.BaseLayer, marker)));
        Assert.True(File.Exists(Path.Combine(fx.BaseLayer, "etc", "motd")));
        Assert.Equal("x\n", File.ReadAllText(Path.Combine(snap.UpperDir, marker)));
        Assert.Equal("y\n", File.ReadAllText(Path.Combine(snap.UpperDir, "etc", marker)));
        var whiteout = UnixFile.Lstat(Path.Combine(snap.UpperDir, "etc", "motd"));
        Assert.True(whiteout is { IsCharDevice: true, RdevMajor: 0, RdevMinor: 0 }, $"expected a 0/0 whiteout, got {whiteout}");
    }

    [Fact]
    public async Task Network_none_has_only_loopback_and_no_routes()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (_, output) = await fx.RunAsync(
            snap,
            ["sh", "-c", "ls /sys/class/net; echo ---; cat /proc/net/route"],
            s => s with { Network = NetworkMode.None });

        var parts = SandboxFixture.Stdout(output).Split("---");
        Assert.Equal(["lo"], parts[0].Split('\n', StringSplitOptions.RemoveEmptyEntries));
        // Only the header line: no route leads anywhere.
        Assert.Single(parts[1].Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task The_default_network_reaches_other_hosts_but_not_the_workers_addresses_the_farms_services_nor_link_local()
    {
        // A service the worker keeps on every address of its machine (as a farm's Redis may be), a host standing for
        // the internet, and one standing for the machine of the farm's services, which the worker is told to refuse.
        using var service = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Any, 0);
        service.Start();
        var port = ((System.Net.IPEndPoint)service.LocalEndpoint).Port;
        // It takes every connection and closes it, so a probe that got through ends at once and says so.
        var accepted = 0;
        _ = Task.Run(async () =>
        {
            while (true)
            {
                using var client = await service.AcceptTcpClientAsync();
                Interlocked.Increment(ref accepted);
            }
        });
        var site = Directory.CreateDirectory(Path.Combine(fx.Root, "site-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        await File.WriteAllTextAsync(Path.Combine(site, "index.html"), "from the other host\n");
        await using var internet = await TestHost.CreateAsync();
        await internet.ServeHttpAsync(site, 8080);
        await using var services = await TestHost.CreateAsync();
        await services.ServeHttpAsync(site, 8080);
        await fx.Firewall.DenyHostAsync(services.Address, CancellationToken.None);
        // A host on the link-local network stands for a cloud's metadata service (169.254.169.254).
        await using var metadata = await TestHost.CreateAsync(TestHost.LinkLocalPrefix);
        await metadata.ServeHttpAsync(site, 8080);
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (_, output) = await fx.RunAsync(snap, ["sh", "-c",
            // busybox-static's wget crashes on Debian 12; a request by hand is the same traffic.
            $"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 30 {internet.Address} 8080; " +
            $"for a in 127.0.0.1:{port} 10.0.2.2:{port} {internet.MachineAddress}:{port} {services.MachineAddress}:{port} {services.Address}:8080 {metadata.Address}:8080; do " +
            "if echo probe | nc -w 3 ${a%:*} ${a#*:}; then echo reached-$a; else echo refused-$a; fi; done; " +
            "readlink /proc/self/ns/net; cat /etc/resolv.conf"]);

        var stdout = SandboxFixture.Stdout(output);
        Assert.True(
            stdout.Contains("from the other host", StringComparison.Ordinal),
            $"the step did not get the page of the internet host {internet}; services host {services}; the step printed:\n{stdout}");
        foreach (var refused in (string[])[$"127.0.0.1:{port}", $"10.0.2.2:{port}", $"{internet.MachineAddress}:{port}", $"{services.MachineAddress}:{port}", $"{services.Address}:8080", $"{metadata.Address}:8080"])
        {
            Assert.Contains("refused-" + refused, stdout, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("reached-", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(new FileInfo("/proc/self/ns/net").LinkTarget!, stdout, StringComparison.Ordinal);
        Assert.Contains($"nameserver {SlirpNetwork.DnsAddress}", stdout, StringComparison.Ordinal);
        Assert.True(accepted == 0, "a connection from the step reached the service on the worker's addresses");
        // The step's network is removed after it (in the background) and never given to another step.
        var used = stdout.Split('\n').Single(l => l.StartsWith("net:[", StringComparison.Ordinal));
        await Wait.UntilAsync(
            () => Task.FromResult(!Directory.EnumerateFiles("/run/netns").Any(f => NamespaceOf(f) == used)),
            TimeSpan.FromSeconds(30),
            () => $"the step's network namespace {used} to be removed");
        var (_, second) = await fx.RunAsync(snap, ["readlink", "/proc/self/ns/net"]);
        Assert.NotEqual(used, SandboxFixture.Stdout(second).Trim());
    }

    [Fact]
    public async Task Network_host_shares_the_workers_network_namespace_and_nothing_else()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (_, output) = await fx.RunAsync(snap, ["sh", "-c", "for n in net pid uts; do readlink /proc/self/ns/$n; done"], s => s with { Network = NetworkMode.Host });

        var inside = SandboxFixture.Stdout(output).Split('\n');
        Assert.Equal(new FileInfo("/proc/self/ns/net").LinkTarget, inside[0]);
        Assert.NotEqual(new FileInfo("/proc/self/ns/pid").LinkTarget, inside[1]);
        Assert.NotEqual(new FileInfo("/proc/self/ns/uts").LinkTarget, inside[2]);
    }

    [Fact]
    public async Task A_named_user_runs_with_its_ids_groups_and_home_and_owns_what_it_writes()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (result, output) = await fx.RunAsync(
            snap,
            ["sh", "-c", "id -u; id -g; id -G; echo $HOME; touch /home/app/made"],
            s => s with { User = "app" });
        snap.Unmount();

        Assert.Equal((1000u, 1000u, "/home/app"), (result.User.Uid, result.User.Gid, result.User.Home));
        Assert.Equal([50u], result.User.AdditionalGids);
        var lines = SandboxFixture.Stdout(output).Split('\n');
        Assert.Equal("1000", lines[0]);
        Assert.Equal("1000", lines[1]);
        Assert.Contains("50", lines[2].Split(' '));
        Assert.Equal("/home/app", lines[3]);
        var made = UnixFile.Lstat(Path.Combine(snap.UpperDir, "home", "app", "made"));
        Assert.True(made is { Uid: 1000, Gid: 1000 }, $"expected 1000:1000, got {made}");
    }

    [Fact]
    public async Task An_unknown_user_fails_before_anything_runs()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var e = await Assert.ThrowsAsync<UnknownUserException>(() => fx.RunAsync(snap, ["true"], s => s with { User = "ghost" }));

        Assert.Equal("FARM3001", e.Code);
        Assert.Contains("ghost", e.Message);
    }

    [Fact]
    public async Task Mount_stubs_the_sandbox_created_do_not_stay_in_the_upperdir()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (result, output) = await fx.RunAsync(snap, ["sh", "-c", "cat /etc/hosts; grep -c . /etc/resolv.conf"]);
        Assert.True(Directory.Exists(Path.Combine(snap.UpperDir, "proc")), "runc was expected to create /proc in the upperdir");
        var removed = snap.Seal(result.MountStubs);

        Assert.Contains("127.0.0.1\tlocalhost", SandboxFixture.Stdout(output));
        Assert.Contains("/etc/hosts", removed);
        Assert.Contains("/etc/resolv.conf", removed);
        Assert.Empty(Directory.EnumerateFileSystemEntries(snap.UpperDir));
    }

    [Fact]
    public async Task A_created_workdir_stays_while_the_stubs_beside_it_go()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (result, output) = await fx.RunAsync(snap, ["pwd"], s => s with { WorkingDirectory = "/srv/app" });
        snap.Seal(result.MountStubs);

        Assert.Equal("/srv/app", SandboxFixture.Stdout(output));
        Assert.Equal(["srv"], Directory.EnumerateFileSystemEntries(snap.UpperDir).Select(Path.GetFileName));
        var created = UnixFile.Lstat(Path.Combine(snap.UpperDir, "srv", "app"));
        Assert.True(created is { IsDirectory: true, Uid: 0, Gid: 0, Permissions: 0x1ED }, $"expected a root-owned 0755 directory, got {created}");
    }

    [Fact]
    public async Task A_step_that_writes_into_etc_keeps_its_file_but_not_the_stubs()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var (result, _) = await fx.RunAsync(snap, ["sh", "-c", "echo v > /etc/version"]);
        snap.Seal(result.MountStubs);

        Assert.Equal(["etc"], Directory.EnumerateFileSystemEntries(snap.UpperDir).Select(Path.GetFileName));
        Assert.Equal(["version"], Directory.EnumerateFileSystemEntries(Path.Combine(snap.UpperDir, "etc")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Cancellation_kills_the_command_and_leaves_no_container_and_no_mount()
    {
        var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);
        using var cts = new CancellationTokenSource();
        var sleep = UniqueSleep();
        var spec = new RunSpec { Args = ["sh", "-c", $"echo started; exec sleep {sleep}"], RootfsPath = snap.MergedDir, UpperDir = snap.UpperDir };

        var run = fx.Runner.RunAsync(spec, (line, _) =>
        {
            if (line.Text == "started")
            {
                cts.Cancel();
            }

            return ValueTask.CompletedTask;
        }, cts.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Empty(await fx.Runner.ListContainersAsync(CancellationToken.None));
        await AssertNoProcessAsync(sleep);
        Assert.Empty(Directory.EnumerateFileSystemEntries(fx.Runner.BundlesDirectory));
        await snap.DisposeAsync();
        Assert.Empty(SandboxFixture.MountsUnder(snap.Directory));
        Assert.False(Directory.Exists(snap.Directory));
    }

    [Fact]
    public async Task A_command_missing_from_the_image_is_reported_by_name()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);

        var e = await Assert.ThrowsAsync<SandboxException>(() => fx.RunAsync(snap, ["no-such-tool", "--help"]));

        Assert.Equal("FARM3003", e.Code);
        Assert.Contains("no-such-tool", e.Message);
        Assert.Empty(await fx.Runner.ListContainersAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_failing_output_handler_stops_the_command_and_is_reported()
    {
        await using var snap = await fx.Snapshotter.CreateAsync([fx.BaseLayer], CancellationToken.None);
        var sleep = UniqueSleep();
        var spec = new RunSpec { Args = ["sh", "-c", $"echo started; exec sleep {sleep}"], RootfsPath = snap.MergedDir, UpperDir = snap.UpperDir };

        var e = await Assert.ThrowsAsync<SandboxException>(() => fx.Runner.RunAsync(
            spec, (_, _) => throw new InvalidOperationException("log sink is gone"), CancellationToken.None));

        Assert.IsType<InvalidOperationException>(e.InnerException);
        Assert.Empty(await fx.Runner.ListContainersAsync(CancellationToken.None));
        await AssertNoProcessAsync(sleep);
    }

    // A duration no other process on the machine uses, so the check below finds this test's sleep and no other.
    private static string UniqueSleep() => $"100.{Random.Shared.Next(100000, 999999)}";

    /// <summary>Waits until no process runs <c>sleep DURATION</c>: a killed process can take a moment to be reaped.</summary>
    private static Task AssertNoProcessAsync(string duration)
    {
        var cmdline = $"sleep\0{duration}\0";
        return Wait.UntilAsync(
            () => Processes(cmdline).Count == 0,
            TimeSpan.FromSeconds(15),
            () => $"the container's 'sleep {duration}' to be killed, but it still runs as {string.Join(", ", Processes(cmdline))}");
    }

    private static List<string> Processes(string cmdline) =>
        Directory.EnumerateDirectories("/proc")
            .Where(d => Path.GetFileName(d).All(char.IsAsciiDigit))
            .Where(d =>
            {
                try
                {
                    return File.ReadAllText(Path.Combine(d, "cmdline")) == cmdline;
                }
                catch (IOException)
                {
                    return false;
                }
            })
            .ToList();

    /// <summary>The namespace a bind-mounted namespace file holds, as readlink of /proc/*/ns/net prints it.</summary>
    private static string NamespaceOf(string file)
    {
        // lstat of the mount point sees the namespace mounted on it (nsfs), whose inode readlink shows.
        var status = Farm.Oci.IO.UnixFile.Lstat(file);
        return status is null ? string.Empty : $"net:[{status.Value.Inode}]";
    }
}
