using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>farm build</c> on the embedded farm, run as a user runs it (a process, as root, real runc and registries), with
/// the results checked by skopeo and podman.
/// </summary>
public sealed partial class BuildCommandTests(BuildFixture fixture) : IClassFixture<BuildFixture>
{
    private const string Greeting = """
        FROM farm-test-busybox:1 AS build
        ARG GREETING=hello
        WORKDIR /src
        COPY greet.txt ./
        RUN echo "step-output: building $GREETING" && sed "s/@G@/$GREETING/" greet.txt > /src/greeting

        FROM farm-test-busybox:1
        ENV APP_HOME=/app
        WORKDIR $APP_HOME
        COPY --from=build /src/greeting ./
        RUN echo "app:x:1000:1000:app:/app:/bin/sh" >> /etc/passwd
        USER app
        EXPOSE 8080
        LABEL example=farm
        CMD ["sh", "-c", "cat /app/greeting; id -un"]
        """;

    private string HelloContext(string greeting = "@G@ from the farm") =>
        fixture.Context(("Dockerfile", Greeting), ("greet.txt", greeting + "\n"), ("ignored.tmp", "secret"), (".dockerignore", "*.tmp\n"));

    [Fact]
    public async Task Plain_progress_numbers_the_steps_shows_their_output_and_a_rebuild_is_all_cached()
    {
        // A greeting no other test builds: the RUN steps must run here, not come from another test's cache.
        var context = HelloContext($"@G@ from the farm {Guid.NewGuid():N}");
        var first = Ok(await fixture.Farm("build", "--progress", "plain", "-t", "plain:1", context));

        Assert.Matches(NumberedStep("build 3/5", "WORKDIR /src"), first.Stderr);
        Assert.Matches(NumberedStep("stage-1 5/9", "RUN echo \"app:x:1000"), first.Stderr);
        Assert.Matches(new Regex(@"^#\d+ \d+\.\d{3} step-output: building hello$", RegexOptions.Multiline), first.Stderr);
        Assert.Matches(new Regex(@"^#\d+ DONE \d+\.\ds$", RegexOptions.Multiline), first.Stderr);
        Assert.Contains("naming to docker.io/library/plain:1", first.Stderr, StringComparison.Ordinal);
        Assert.Contains("docker.io/library/plain", Ok(await fixture.Farm("images")).Stdout, StringComparison.Ordinal);

        var again = Ok(await fixture.Farm("build", "--progress", "plain", "-t", "plain:1", context));
        var steps = StepLines().Count(again.Stderr);
        Assert.Equal(6, steps);
        Assert.Equal(6, Regex.Count(again.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
        Assert.DoesNotMatch(new Regex(@"^#\d+ \d+\.\d{3} step-output", RegexOptions.Multiline), again.Stderr);
    }

    [Fact]
    public async Task RUN_network_host_needs_allow_network_host_and_then_shares_the_machines_network()
    {
        var marker = Guid.NewGuid().ToString("N");
        var context = fixture.Context(("Dockerfile", $"FROM farm-test-busybox:1\nRUN --network=host readlink /proc/self/ns/net > /host-net && echo {marker}\nRUN readlink /proc/self/ns/net > /own-net\n"));

        var refused = await fixture.Farm("build", "--progress", "plain", context);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("FARM4220: ", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("Dockerfile:2:1: RUN --network=host needs the network.host entitlement", refused.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(marker, refused.Stderr, StringComparison.Ordinal);

        var rootfs = Path.GetFullPath(Path.Combine(context, "..", "rootfs-" + marker[..8]));
        Ok(await fixture.Farm("build", "--progress", "plain", "--allow", "network.host", "--output", $"type=local,dest={rootfs}", context));
        var machine = new FileInfo("/proc/self/ns/net").LinkTarget;
        Assert.Equal(machine, File.ReadAllText(Path.Combine(rootfs, "host-net")).Trim());
        Assert.NotEqual(machine, File.ReadAllText(Path.Combine(rootfs, "own-net")).Trim());
    }

    [Fact]
    public async Task Changing_one_file_reruns_the_steps_that_depend_on_it_and_the_image_shows_the_change()
    {
        var context = HelloContext("@G@ version one");
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "change:1", context));
        File.WriteAllText(Path.Combine(context, "greet.txt"), "@G@ version two\n");
        File.WriteAllText(Path.Combine(context, "ignored.tmp"), "changed too, but ignored");

        var rebuilt = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", "change:1", "--output", $"type=local,dest={Path.Combine(context, "..", "rootfs-change")}", context));

        var finished = Events(rebuilt.Stdout).Where(e => (string?)e["type"] == "StepFinished").Select(e => e["outcome"]!).ToList();
        var rerun = finished.Where(o => !(bool)o["cached"]!).Select(o => (string)o["display"]!).ToList();
        Assert.Equal(["COPY greet.txt ./", "RUN echo \"step-output: building $GREETING\" && sed \"s/@G@/$GREETING/\" greet.txt > /src/greeting", "COPY --from=build /src/greeting ./", "RUN echo \"app:x:1000:1000:app:/app:/bin/sh\" >> /etc/passwd"], rerun);
        var rootfs = Path.GetFullPath(Path.Combine(context, "..", "rootfs-change"));
        Assert.Equal("hello version two\n", File.ReadAllText(Path.Combine(rootfs, "app", "greeting")));
    }

    [Fact]
    public async Task A_same_size_edit_with_its_modification_time_put_back_is_still_built()
    {
        // The context stat cache records only contexts nothing in which changed in the last second: wait that out,
        // so that the second build below trusts the cache and the third must see through the put-back time.
        var context = HelloContext($"@G@ stat one {Guid.NewGuid():N}");
        var greet = Path.Combine(context, "greet.txt");
        var mtime = File.GetLastWriteTimeUtc(greet);
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "stat:1", context));
        var cached = Ok(await fixture.Farm("build", "--progress", "plain", "-t", "stat:1", context));
        Assert.Equal(6, Regex.Count(cached.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));

        var before = File.ReadAllText(greet);
        var after = before.Replace("stat one", "stat two", StringComparison.Ordinal);
        Assert.Equal(before.Length, after.Length);
        File.WriteAllText(greet, after);
        File.SetLastWriteTimeUtc(greet, mtime);

        var dest = Path.GetFullPath(Path.Combine(context, "..", "rootfs-stat"));
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", "stat:1", "--output", $"type=local,dest={dest}", context));
        Assert.StartsWith("hello stat two ", File.ReadAllText(Path.Combine(dest, "app", "greeting")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rawjson_prints_one_event_per_line_ending_with_the_stored_image()
    {
        var result = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", "raw:1", HelloContext()));

        var events = Events(result.Stdout);
        var types = events.Select(e => (string)e["type"]!).ToList();
        Assert.Equal("ContextPacked", types[0]);
        Assert.Contains("BaseImageResolved", types);
        Assert.Contains("BuildStarted", types);
        Assert.Equal(types.Count(t => t == "StepStarted"), types.Count(t => t == "StepFinished"));
        // The local farm names the image before it reports the end of the build.
        Assert.Equal(["ImageStored", "BuildFinished"], types[^2..]);
        var stepLog = events.FirstOrDefault(e => (string?)e["type"] == "StepLog" && ((string?)e["line"]!["line"])!.StartsWith("step-output", StringComparison.Ordinal));
        var built = events.Any(e => (string?)e["type"] == "StepFinished" && !(bool)e["outcome"]!["cached"]!);
        Assert.True(stepLog is not null || !built, "a RUN that ran must have its output in StepLog events");

        var inspect = JsonNode.Parse(Ok(await fixture.Farm("inspect", "raw:1")).Stdout)!.AsArray()[0]!;
        Assert.Equal((string?)events[^1]["imageDigest"], (string?)inspect["Digest"]);
        Assert.Equal((string?)events[^2]["id"], (string?)inspect["Id"]);
        Assert.Equal("farm", (string?)inspect["config"]!["Labels"]!["example"]);
    }

    [Fact]
    public async Task Tty_progress_draws_a_live_view_on_a_terminal()
    {
        var command = $"{CliProcess.CommandText} build --progress auto --no-cache -t tty:1 {HelloContext()}";
        var start = new ProcessStartInfo("script", ["-qefc", command, "/dev/null"]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment().Concat(fixture.Env))
        {
            start.Environment[key] = value;
        }

        start.Environment["COLUMNS"] = "120";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var screen = await output;

        Assert.True(process.ExitCode == 0, $"farm build under a terminal exited {process.ExitCode}: {screen}");
        Assert.Contains("[+] Building", screen, StringComparison.Ordinal);
        Assert.Contains("\u001b[", screen, StringComparison.Ordinal);
        Assert.Matches(@"=> \[stage-1 5/9\] RUN echo ""app:x:1000.* on local", screen);
        Assert.DoesNotContain("#1 [internal]", screen, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Push_then_podman_runs_the_image_and_prints_what_CMD_prints()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        var remote = $"{TestRegistries.Anonymous}/t{Guid.NewGuid():N}/hello:1";

        Ok(await fixture.Farm("build", "--progress", "plain", "--push", "-t", remote, HelloContext()));

        var output = await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", remote);
        Assert.Equal("hello from the farm\napp\n", output);
        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--config", "--tls-verify=false", $"docker://{remote}"))!["config"]!;
        Assert.Equal("/app", (string?)config["WorkingDir"]);
        Assert.NotNull(config["ExposedPorts"]!["8080/tcp"]);
        Assert.Contains("APP_HOME=/app", config["Env"]!.AsArray().Select(e => (string?)e));
        await Tool.RunAsync("podman", "rmi", "-f", remote);
    }

    [Fact]
    public async Task Output_oci_is_read_by_skopeo_and_output_docker_is_loaded_by_podman()
    {
        var context = HelloContext();
        var layout = Path.Combine(fixture.Directory, "oci-" + Guid.NewGuid().ToString("N")[..8]);
        var archive = Path.Combine(fixture.Directory, "docker-" + Guid.NewGuid().ToString("N")[..8] + ".tar");
        var name = $"farm-test-out-{Guid.NewGuid():N}:1";

        Ok(await fixture.Farm("build", "--progress", "plain", "--output", $"type=oci,dest={layout},tar=false", context));
        Ok(await fixture.Farm("build", "--progress", "plain", "-t", name, "--output", $"type=docker,dest={archive}", context));

        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--config", $"oci:{layout}"))!["config"]!;
        Assert.Equal("[\"sh\",\"-c\",\"cat /app/greeting; id -un\"]", config["Cmd"]!.ToJsonString());
        Assert.Equal("app", (string?)config["User"]);
        var loaded = await Tool.RunAsync("podman", "load", "-i", archive);
        Assert.Contains(name, loaded, StringComparison.Ordinal);
        try
        {
            Assert.Equal("hello from the farm\napp\n", await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "docker.io/library/" + name));
        }
        finally
        {
            await Tool.RunAsync("podman", "rmi", "-f", "docker.io/library/" + name);
        }
    }

    [Fact]
    public async Task An_imported_rootfs_is_a_base_image_pinned_to_its_digest()
    {
        var name = $"imported-{Guid.NewGuid().ToString("N")[..8]}:1";
        Ok(await fixture.Farm("import", BuildFixture.BusyboxRootfs(fixture.Directory), name));
        var digest = (string?)JsonNode.Parse(Ok(await fixture.Farm("inspect", name)).Stdout)!.AsArray()[0]!["Digest"];
        var context = fixture.Context(("Dockerfile", $"FROM {name}\nRUN echo from-import > /marker\n"));

        var result = Ok(await fixture.Farm("build", "--progress", "rawjson", "-t", "on-import:1", context));

        var resolved = Events(result.Stdout).Single(e => (string?)e["type"] == "BaseImageResolved");
        Assert.Equal(name, (string?)resolved["reference"]);
        Assert.Equal(digest, (string?)resolved["digest"]);
    }

    [Fact]
    public async Task A_push_to_the_htpasswd_registry_needs_farm_login()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        var remote = $"{TestRegistries.Basic}/t{Guid.NewGuid():N}/hello:1";
        var context = HelloContext();
        var docker = Path.Combine(fixture.Directory, "docker-login-" + Guid.NewGuid().ToString("N")[..8]);
        var env = new Dictionary<string, string>(fixture.Env) { ["DOCKER_CONFIG"] = docker };

        var refused = await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "--push", "-t", remote, context);
        Assert.Equal(1, refused.ExitCode);
        Assert.Matches(new Regex(@"^farm: FARM\d{4}: .*(login|credentials|401)", RegexOptions.Multiline | RegexOptions.IgnoreCase), refused.Stderr);

        Ok(await FarmCli.RunAsync(env, "farm-secret\n", "login", "-u", TestRegistries.BasicUser, "--password-stdin", TestRegistries.Basic));
        Ok(await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "--push", "-t", remote, context));

        var inspect = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--creds", $"{TestRegistries.BasicUser}:{TestRegistries.BasicPassword}", $"docker://{remote}"))!;
        Assert.Equal("farm", (string?)inspect["Labels"]!["example"]);
    }

    [Fact]
    public async Task A_bad_Dockerfile_gives_one_line_with_file_line_and_column_and_exit_code_1()
    {
        var context = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\nRUN true\nCOPY --frm=x a b\n"));

        var result = await fixture.Farm("build", "--progress", "plain", context);

        Assert.Equal(1, result.ExitCode);
        var dockerfile = Path.Combine(context, "Dockerfile");
        Assert.Matches(new Regex($@"^farm: FARM10\d\d: {Regex.Escape(dockerfile)}:3:\d+: ", RegexOptions.Multiline), result.Stderr);
        Assert.True(result.Stderr.Split('\n').Length < 25, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_RUN_exits_non_zero_with_its_output_and_a_farm_error_line()
    {
        var context = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\nRUN echo first-line-of-output && echo to-stderr >&2 && exit 3\n"));

        var result = await fixture.Farm("build", "--progress", "plain", context);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("first-line-of-output", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("to-stderr", result.Stderr, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"^farm: FARM4201: .*exited with code 3", RegexOptions.Multiline), result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dockerignored_files_are_not_in_the_context_and_changing_them_rebuilds_nothing()
    {
        var context = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\nCOPY . /ctx/\n"), ("kept.txt", "kept"), ("notes.tmp", "one"), (".dockerignore", "*.tmp\n"));
        var first = Ok(await fixture.Farm("build", "--progress", "rawjson", context));
        File.WriteAllText(Path.Combine(context, "notes.tmp"), "two");
        var rootfs = Path.Combine(fixture.Directory, "rootfs-" + Guid.NewGuid().ToString("N")[..8]);

        var again = Ok(await fixture.Farm("build", "--progress", "rawjson", "--output", $"type=local,dest={rootfs}", context));

        // The same context packs to the same tar in another process: stored once, and no step needs to run.
        Assert.Equal((string?)Events(first.Stdout)[0]["digest"], (string?)Events(again.Stdout)[0]["digest"]);
        Assert.All(Events(again.Stdout).Where(e => (string?)e["type"] == "StepFinished"), e => Assert.True((bool)e["outcome"]!["cached"]!));
        Assert.True(File.Exists(Path.Combine(rootfs, "ctx", "kept.txt")));
        Assert.False(File.Exists(Path.Combine(rootfs, "ctx", "notes.tmp")));
    }

    [Fact]
    public async Task Without_root_a_step_that_must_run_fails_with_FARM5011()
    {
        // A directory the unprivileged user can use: the state, the rootfs tar and the context.
        var dir = Path.Combine(Path.GetTempPath(), "farm-nonroot-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);
        try
        {
            var rootfs = BuildFixture.BusyboxRootfs(dir);
            File.SetUnixFileMode(rootfs, (UnixFileMode)0b110_110_110);
            var context = Directory.CreateDirectory(Path.Combine(dir, "ctx")).FullName;
            File.SetUnixFileMode(context, (UnixFileMode)0b111_111_111);
            File.WriteAllText(Path.Combine(context, "Dockerfile"), "FROM base:1\nRUN true\n");
            File.SetUnixFileMode(Path.Combine(context, "Dockerfile"), (UnixFileMode)0b110_110_110);

            var imported = await AsNobodyAsync(dir, "import", rootfs, "base:1");
            Assert.True(imported.ExitCode == 0, imported.Stderr);
            var result = await AsNobodyAsync(dir, "build", "--progress", "plain", context);

            Assert.Equal(1, result.ExitCode);
            Assert.Matches(new Regex(@"^farm: FARM5011: .*need root", RegexOptions.Multiline), result.Stderr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>farm as user nobody (setpriv), with its state under <paramref name="dir"/>.</summary>
    private static async Task<CliProcess.Result> AsNobodyAsync(string dir, params string[] args)
    {
        var start = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["--reuid=65534", "--regid=65534", "--clear-groups", .. CliProcess.Command, .. args])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["HOME"] = dir;
        start.Environment["DOTNET_CLI_HOME"] = dir;
        start.Environment["FARM_STATE_DIR"] = Path.Combine(dir, "state");
        start.Environment["FARM_HOST"] = string.Empty;
        foreach (var (key, value) in FarmProcess.LocalFarmEnvironment())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new CliProcess.Result(process.ExitCode, await stdout, await stderr);
    }

    private static Regex NumberedStep(string stage, string instruction) =>
        new($@"^#\d+ \[{Regex.Escape(stage)}\] {Regex.Escape(instruction)}", RegexOptions.Multiline);

    [GeneratedRegex(@"^#\d+ \[(build|stage-1) \d+/\d+\] ", RegexOptions.Multiline)]
    private static partial Regex StepLines();

    private static List<JsonNode> Events(string stdout) =>
        [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!)];

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
        return result;
    }
}
