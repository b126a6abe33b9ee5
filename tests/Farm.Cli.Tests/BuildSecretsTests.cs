using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>RUN --mount</c> through <c>farm build</c> on the local farm daemon (a private state directory, the daemon at
/// Debug level exporting its telemetry to an OTLP sink of the test): secrets given with <c>--secret</c> reach the step
/// and nothing else, SSH agents are forwarded, cache mounts outlive a build, binds from a stage and tmpfs mounts leave
/// nothing in the image.
/// </summary>
public sealed class BuildSecretsTests(BuildFixture fixture) : IClassFixture<BuildFixture>, IDisposable
{
    private readonly OtlpSink _otlp = new();

    /// <summary>Every call runs with these, so the daemon this class starts logs at Debug and exports to the sink.</summary>
    private Dictionary<string, string> Env
    {
        get
        {
            var env = fixture.Env;
            foreach (var (key, value) in _otlp.Environment)
            {
                env[key] = value;
            }

            env["Logging__LogLevel__Default"] = "Debug";
            return env;
        }
    }

    private Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    [Fact]
    public async Task Secrets_from_a_file_and_a_variable_reach_the_step_and_no_layer_config_event_log_trace_or_state_file()
    {
        var fileSecret = "file-secret-" + Guid.NewGuid().ToString("N");
        var envSecret = "env-secret-" + Guid.NewGuid().ToString("N");
        var context = fixture.Context(
            ("Dockerfile", """
                FROM farm-test-busybox:1
                RUN --mount=type=secret,id=token,required=true --mount=type=secret,id=api,env=API_KEY \
                    sha256sum /run/secrets/token | cut -c1-64 > /token.sha && printf %s "$API_KEY" | sha256sum | cut -c1-64 > /api.sha \
                    && stat -c '%a' /run/secrets/token > /token.mode
                """));
        var secretFile = Path.Combine(fixture.Directory, "token-" + Guid.NewGuid().ToString("N")[..6]);
        File.WriteAllText(secretFile, fileSecret);
        var dest = Path.Combine(fixture.Directory, "out-" + Guid.NewGuid().ToString("N")[..6]);
        var env = Env;
        env["FARM_TEST_API_KEY"] = envSecret;

        var build = await FarmCli.RunAsync(env, null, "build", "--progress", "rawjson", "--secret", $"id=token,src={secretFile}", "--secret", "id=api,env=FARM_TEST_API_KEY",
            "-t", "secrets:1", "--output", $"type=oci,dest={dest}.tar", context);
        Ok(build);
        Ok(await FarmCli.RunAsync(env, null, "build", "--progress", "plain", "--secret", $"id=token,src={secretFile}", "--secret", "id=api,env=FARM_TEST_API_KEY", "--output", $"type=local,dest={dest}", context));

        // The step saw both, byte for byte, and the file with mode 0400.
        Assert.Equal(Sha256(fileSecret), File.ReadAllText(Path.Combine(dest, "token.sha")).Trim());
        Assert.Equal(Sha256(envSecret), File.ReadAllText(Path.Combine(dest, "api.sha")).Trim());
        Assert.Equal("400", File.ReadAllText(Path.Combine(dest, "token.mode")).Trim());
        Assert.False(Directory.Exists(Path.Combine(dest, "run", "secrets")), "the secrets' mount point is in the image");

        var places = new Dictionary<string, string>
        {
            ["the image (OCI archive: manifest, config with history, layers)"] = await ArchiveTextAsync(dest + ".tar"),
            ["the image's files"] = LeakSearch.FilesText(dest),
            ["the events and CLI output"] = build.Stdout + build.Stderr,
            ["the daemon's state directory (action cache, blobs, worker state, log)"] = LeakSearch.FilesText(Env["FARM_STATE_DIR"]),
        };
        await Wait.UntilAsync(() => LeakSearch.Text(_otlp.Bodies("/v1/traces")).Contains("RUN --mount=type=secret", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => "the build's step spans to be exported to the OTLP sink");
        places["exported traces, logs and metrics"] = LeakSearch.Text(_otlp.Bodies());

        // Not vacuous: the places hold the build.
        Assert.Contains("token.sha", places["the image (OCI archive: manifest, config with history, layers)"], StringComparison.Ordinal);
        Assert.Contains("BuildFinished", places["the events and CLI output"], StringComparison.Ordinal);
        Assert.Contains("token.sha", places["the daemon's state directory (action cache, blobs, worker state, log)"], StringComparison.Ordinal);
        Assert.Contains("secrets:1", File.ReadAllText(Path.Combine(Env["FARM_STATE_DIR"], "farmd.log")), StringComparison.Ordinal);

        var found = (from place in places
                     from secret in new[] { fileSecret, envSecret }
                     from form in LeakSearch.Forms(secret)
                     where place.Value.Contains(form, StringComparison.Ordinal)
                     select $"{place.Key} holds a secret ({secret[..8]}...)").ToList();
        Assert.True(found.Count == 0, string.Join(Environment.NewLine, found));
    }

    [Fact]
    public async Task A_required_secret_not_given_is_refused_at_its_line_and_bad_or_misdirected_secret_flags_before_anything_runs()
    {
        var context = fixture.Context(("Dockerfile", "FROM farm-test-busybox:1\nRUN true\nRUN --mount=type=secret,id=npmrc,required=true cat /run/secrets/npmrc\n"));

        var missing = await Farm("build", "--progress", "plain", context);
        var unreadable = await Farm("build", "--progress", "plain", "--secret", "id=npmrc,src=/nonexistent/npmrc", context);
        var remoteSsh = await Farm("build", "--progress", "plain", "--farm", "http://127.0.0.1:1", "--ssh", "default=" + fixture.Directory, context);
        var secretFile = Path.Combine(context, "npmrc");
        File.WriteAllText(secretFile, "registry=x");
        var queued = await Farm("submit", "--farm", "http://127.0.0.1:1", "--secret", $"id=npmrc,src={secretFile}", context);

        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("FARM4311: ", missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("Dockerfile:3:1: RUN --mount=type=secret,id=npmrc,required=true needs the secret 'npmrc'", missing.Stderr, StringComparison.Ordinal);
        Assert.Contains("farm: FARM5090: --secret id=npmrc reads the file /nonexistent/npmrc", unreadable.Stderr, StringComparison.Ordinal);
        Assert.Contains("farm: FARM5091: --ssh forwards an SSH agent of this machine", remoteSsh.Stderr, StringComparison.Ordinal);
        Assert.Contains("farm: FARM5091: --secret and --ssh cannot go through the queue", queued.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_ssh_agent_socket_is_forwarded_to_the_step()
    {
        var socketPath = Path.Combine(fixture.Directory, "agent-" + Guid.NewGuid().ToString("N")[..6] + ".sock");
        using var agent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        agent.Bind(new UnixDomainSocketEndPoint(socketPath));
        agent.Listen(1);
        var marker = Guid.NewGuid().ToString("N");
        var context = fixture.Context(("Dockerfile", $"FROM farm-test-busybox:1\nRUN --mount=type=ssh,required=true test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK {marker}\" > /ssh\n"));
        var dest = Path.Combine(fixture.Directory, "ssh-" + marker[..6]);

        Ok(await Farm("build", "--progress", "plain", "--ssh", "default=" + socketPath, "--output", $"type=local,dest={dest}", context));

        Assert.Equal($"/run/buildkit/ssh_agent.1 {marker}", File.ReadAllText(Path.Combine(dest, "ssh")).Trim());
        Assert.False(Directory.Exists(Path.Combine(dest, "run")), "the agent's mount point is in the image");
    }

    [Fact]
    public async Task A_cache_mount_keeps_its_files_for_the_next_build_and_out_of_the_image()
    {
        var marker = Guid.NewGuid().ToString("N");
        var id = "dl-" + marker[..8];
        var first = fixture.Context(("Dockerfile", $"FROM farm-test-busybox:1\nRUN --mount=type=cache,id={id},target=/var/cache/dl echo {marker} >> /var/cache/dl/log && echo built > /first\n"));
        var second = fixture.Context(("Dockerfile", $"FROM farm-test-busybox:1\nRUN --mount=type=cache,id={id},target=/var/cache/dl,sharing=locked cat /var/cache/dl/log > /seen\n"));
        var dest = Path.Combine(fixture.Directory, "cache-" + marker[..6]);

        Ok(await Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}-1", first));
        Ok(await Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}-2", second));

        Assert.Equal(marker, File.ReadAllText(Path.Combine(dest + "-2", "seen")).Trim());
        Assert.False(Directory.Exists(Path.Combine(dest + "-1", "var")), "the cache's mount point is in the first image");
        Assert.False(Directory.Exists(Path.Combine(dest + "-2", "var")), "the cache's mount point is in the second image");
    }

    [Fact]
    public async Task Mount_options_expand_build_args_so_a_cache_id_from_an_arg_is_the_cache_it_names()
    {
        var marker = Guid.NewGuid().ToString("N");
        var id = "arg-" + marker[..8];
        // The cache's id and target come from build args; the second build names the same cache literally.
        var first = fixture.Context(("Dockerfile", $"FROM farm-test-busybox:1\nARG NAME\nARG DIR=/var/cache\nRUN --mount=type=cache,id=$NAME,target=${{DIR}}/$NAME echo {marker} >> /var/cache/{id}/log\n"));
        var second = fixture.Context(("Dockerfile", $"FROM farm-test-busybox:1\nRUN --mount=type=cache,id={id},target=/c cat /c/log > /seen\n"));
        var dest = Path.Combine(fixture.Directory, "argcache-" + marker[..6]);

        Ok(await Farm("build", "--progress", "plain", "--build-arg", "NAME=" + id, "--output", $"type=local,dest={dest}-1", first));
        Ok(await Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}-2", second));

        Assert.Equal(marker, File.ReadAllText(Path.Combine(dest + "-2", "seen")).Trim());
        Assert.False(Directory.Exists(Path.Combine(dest + "-1", "var", "cache", id)), "the cache's mount point is in the first image");
    }

    [Fact]
    public async Task A_bind_from_a_stage_and_a_tmpfs_serve_the_step_and_leave_nothing_in_the_image()
    {
        var marker = Guid.NewGuid().ToString("N");
        var context = fixture.Context(("Dockerfile", $"""
            FROM farm-test-busybox:1 AS tools
            RUN mkdir /out && echo "tool {marker}" > /out/tool

            FROM farm-test-busybox:1
            RUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools --mount=type=tmpfs,target=/scratch,size=4m \
                cat /mnt/tools/tool > /used && echo t > /scratch/t && grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /scratch-type
            """));
        var dest = Path.Combine(fixture.Directory, "bind-" + marker[..6]);

        Ok(await Farm("build", "--progress", "plain", "--output", $"type=local,dest={dest}", context));

        Assert.Equal($"tool {marker}", File.ReadAllText(Path.Combine(dest, "used")).Trim());
        Assert.Equal("tmpfs", File.ReadAllText(Path.Combine(dest, "scratch-type")).Trim());
        Assert.False(Directory.Exists(Path.Combine(dest, "mnt")), "the bind's mount point is in the image");
        Assert.False(Directory.Exists(Path.Combine(dest, "scratch")), "the tmpfs's mount point is in the image");
        Assert.False(Directory.Exists(Path.Combine(dest, "out")), "the stage's files are in the image");
    }

    public void Dispose() => _otlp.Dispose();

    private static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>Every member of an OCI archive (a tar of the layout) as text, its gzip blobs uncompressed.</summary>
    private static async Task<string> ArchiveTextAsync(string archive)
    {
        var dir = archive + ".d";
        Directory.CreateDirectory(dir);
        await System.Formats.Tar.TarFile.ExtractToDirectoryAsync(archive, dir, overwriteFiles: true);
        return LeakSearch.FilesText(dir);
    }

    private static CliProcess.Result Ok(CliProcess.Result result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}
