using System.Net.Sockets;
using System.Text;
using Farm.Contracts;
using Farm.Worker.Jobs;
using Farm.Worker.RunMounts;

namespace Farm.Worker.Tests;

/// <summary>
/// <c>RUN --mount</c> of every type through <see cref="LayerJobExecutor"/>, with runc, overlayfs and the real registry:
/// what the step sees, and that nothing of a mount (content or mount point) reaches the layer.
/// </summary>
[Collection(ExecutorCollection.Name)]
public sealed class RunMountTests(ExecutorFixture fx)
{
    private static RunStepMount Cache(string target, string? id = null, string sharing = "shared", string? tenant = null) =>
        new() { Type = "cache", Target = target, Id = id ?? target, Sharing = sharing, Tenant = tenant };

    private static LayerStep Run(string command, params RunStepMount[] mounts) => ExecutorFixture.Run(command, r => r with { Mounts = mounts });

    private static List<string> Names(List<LayerEntry> entries) => [.. entries.Select(e => e.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task A_cache_mount_keeps_its_content_for_the_next_build_on_the_worker_and_none_of_it_reaches_a_layer()
    {
        using var executor = fx.NewExecutor("w-cache");
        var id = "apt-" + Guid.NewGuid().ToString("N")[..6];

        var (first, _) = await fx.ExecuteAsync(fx.Job(Run("echo downloaded > /var/cache/pkgs/a.deb && echo one > /out", Cache("/var/cache/pkgs", id))), executor);
        var (second, output) = await fx.ExecuteAsync(fx.Job(Run("cat /var/cache/pkgs/a.deb; echo two > /out2", Cache("/var/cache/pkgs", id))), executor);

        Assert.Equal(["downloaded"], output);
        Assert.Equal(["out"], Names(await fx.ReadLayerAsync(first.Layer!)));
        Assert.Equal(["out2"], Names(await fx.ReadLayerAsync(second.Layer!)));
    }

    [Fact]
    public async Task A_cache_is_per_id_and_per_tenant_and_a_new_one_gets_the_mounts_mode_and_owner()
    {
        using var executor = fx.NewExecutor("w-cache-ids");
        await fx.ExecuteAsync(fx.Job(Run("echo acme > /c/who", Cache("/c", "npm", tenant: "acme"))), executor);

        var (_, other) = await fx.ExecuteAsync(fx.Job(Run("ls -A /c; stat -c '%a %u:%g' /c", Cache("/c", "npm", tenant: "globex") with { Mode = 0x1C0, Uid = 1000, Gid = 1000 })), executor);
        var (_, otherId) = await fx.ExecuteAsync(fx.Job(Run("ls -A /c", Cache("/c", "pip", tenant: "acme"))), executor);
        var (_, same) = await fx.ExecuteAsync(fx.Job(Run("cat /c/who", Cache("/c", "npm", tenant: "acme"))), executor);

        Assert.Equal(["700 1000:1000"], other);
        Assert.Empty(otherId);
        Assert.Equal(["acme"], same);
    }

    [Fact]
    public async Task A_cache_from_a_stage_starts_with_its_files_and_a_read_only_cache_refuses_writes()
    {
        var seedDir = Path.Combine(fx.Root, "seed-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(seedDir, "deps"));
        File.WriteAllText(Path.Combine(seedDir, "deps", "lock"), "seeded\n");
        var seed = await fx.PublishDirectoryAsync(seedDir);
        using var executor = fx.NewExecutor("w-cache-from");
        var mount = Cache("/c", "from-" + Guid.NewGuid().ToString("N")[..6]) with { From = new CopySource { Layers = [seed] }, Source = "/deps", ReadOnly = true };

        var (_, output) = await fx.ExecuteAsync(fx.Job(Run("cat /c/lock; touch /c/new 2>/dev/null && echo writable || echo read-only", mount)), executor);

        Assert.Equal(["seeded", "read-only"], output);
    }

    [Fact]
    public async Task A_bind_from_a_stage_shows_its_files_read_only_and_leaves_no_trace_in_the_layer()
    {
        var stageDir = Path.Combine(fx.Root, "stage-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(stageDir, "out"));
        File.WriteAllText(Path.Combine(stageDir, "out", "tool"), "built by the stage\n");
        var stage = await fx.PublishDirectoryAsync(stageDir);
        var bind = new RunStepMount { Type = "bind", Target = "/mnt/build", From = new CopySource { Layers = [stage] }, Source = "/out", ReadOnly = true };

        var (result, output) = await fx.ExecuteAsync(fx.Job(Run("cat /mnt/build/tool > /copied; touch /mnt/build/x 2>/dev/null || echo read-only", bind)));

        Assert.Equal(["read-only"], output);
        var entries = await fx.ReadLayerAsync(result.Layer!);
        Assert.Equal(["copied"], Names(entries));
        Assert.Equal("built by the stage\n", entries.Single().Content);
    }

    [Fact]
    public async Task A_read_write_bind_of_the_context_takes_writes_that_are_discarded()
    {
        var tar = TarOf(("src/main.c", "int main;\n"));
        var digest = await fx.PublishTarAsync(tar);
        var bind = new RunStepMount { Type = "bind", Target = "/src", From = new CopySource { ContextDigest = digest }, Source = "src", ReadOnly = false };

        var (first, output) = await fx.ExecuteAsync(fx.Job(Run("cat /src/main.c; echo changed > /src/main.c; echo new > /src/obj; cat /src/main.c", bind)));
        var (_, again) = await fx.ExecuteAsync(fx.Job(Run("cat /src/main.c; ls /src", bind)));

        Assert.Equal(["int main;", "changed"], output);
        Assert.Equal(["int main;", "main.c"], again);
        Assert.Null(first.Layer);
    }

    [Fact]
    public async Task A_bind_of_a_path_the_source_lacks_fails_the_step_with_FARM3120()
    {
        var stage = await fx.PublishDirectoryAsync(Directory.CreateDirectory(Path.Combine(fx.Root, "empty-" + Guid.NewGuid().ToString("N")[..6])).FullName);
        var bind = new RunStepMount { Type = "bind", Target = "/m", From = new CopySource { Layers = [stage] }, Source = "/missing", ReadOnly = true };

        var e = await Assert.ThrowsAnyAsync<FarmException>(() => fx.ExecuteAsync(fx.Job(Run("true", bind))));

        Assert.Equal(FarmErrorCodes.RunMountFailed, e.Code);
        Assert.Contains("'/missing'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tmpfs_mount_is_a_tmpfs_of_the_size_asked_whose_files_are_gone_with_the_step()
    {
        var tmpfs = new RunStepMount { Type = "tmpfs", Target = "/scratch", SizeBytes = 8L << 20 };

        var (result, output) = await fx.ExecuteAsync(fx.Job(Run(
            "echo big > /scratch/file && grep ' /scratch ' /proc/mounts | cut -d' ' -f1,3 && df -k /scratch | tail -n 1 | awk '{print $2}' && echo kept > /kept", tmpfs)));

        Assert.Equal(["tmpfs tmpfs", "8192"], output);
        Assert.Equal(["kept"], Names(await fx.ReadLayerAsync(result.Layer!)));
    }

    [Fact]
    public async Task A_secret_is_a_read_only_file_on_a_tmpfs_or_a_variable_and_never_reaches_the_layer()
    {
        var value = "s3cr3t-" + Guid.NewGuid().ToString("N");
        using var executor = Secrets("w-secret", new BuildSecretValues { Secrets = new Dictionary<string, byte[]> { ["token"] = Encoding.UTF8.GetBytes(value) } });
        var file = new RunStepMount { Type = "secret", Id = "token", Target = "/run/secrets/token" };
        var owned = new RunStepMount { Type = "secret", Id = "token", Target = "/home/app/.token", Mode = 0x1A0, Uid = 1000, Gid = 1000 };
        var env = new RunStepMount { Type = "secret", Id = "token", Env = "API_TOKEN" };

        var (result, output) = await fx.ExecuteAsync(fx.Job(Run(
            """
            stat -c '%a %u:%g' /run/secrets/token /home/app/.token
            grep ' /run/secrets/token ' /proc/mounts | cut -d' ' -f3
            test "$(cat /run/secrets/token)" = "$API_TOKEN" && echo same
            echo -n "$API_TOKEN" | wc -c
            echo done > /out
            """, file, owned, env)), executor);

        Assert.Equal(["400 0:0", "640 1000:1000", "tmpfs", "same", value.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)], output);
        var entries = await fx.ReadLayerAsync(result.Layer!);
        Assert.Equal(["out"], Names(entries));
        Assert.DoesNotContain(entries, e => e.Content?.Contains(value, StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task A_required_secret_the_build_lacks_fails_with_FARM3121_and_an_optional_one_is_left_out()
    {
        using var executor = Secrets("w-nosecret", BuildSecretValues.None);

        var e = await Assert.ThrowsAnyAsync<FarmException>(() => fx.ExecuteAsync(fx.Job(Run("true", new RunStepMount { Type = "secret", Id = "npm", Target = "/run/secrets/npm", Required = true })), executor));
        var (_, output) = await fx.ExecuteAsync(fx.Job(Run("test -e /run/secrets/npm && echo there || echo absent", new RunStepMount { Type = "secret", Id = "npm", Target = "/run/secrets/npm" })), executor);

        Assert.Equal(FarmErrorCodes.BuildSecretUnavailable, e.Code);
        Assert.Equal(["absent"], output);
    }

    [Fact]
    public async Task An_ssh_mount_forwards_the_agent_socket_and_sets_SSH_AUTH_SOCK()
    {
        var socketPath = Path.Combine(fx.Root, "agent-" + Guid.NewGuid().ToString("N")[..6] + ".sock");
        using var agent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        agent.Bind(new UnixDomainSocketEndPoint(socketPath));
        agent.Listen(1);
        using var executor = Secrets("w-ssh", new BuildSecretValues { SshAgents = new Dictionary<string, string> { ["default"] = socketPath } });

        var (result, output) = await fx.ExecuteAsync(fx.Job(Run("echo $SSH_AUTH_SOCK; test -S $SSH_AUTH_SOCK && echo socket; echo x > /out", new RunStepMount { Type = "ssh", Id = "default", Required = true })), executor);

        Assert.Equal(["/run/buildkit/ssh_agent.1", "socket"], output);
        Assert.Equal(["out"], Names(await fx.ReadLayerAsync(result.Layer!)));
    }

    [Fact]
    public async Task Several_mounts_on_one_run_all_work_and_leave_only_the_steps_own_file()
    {
        using var executor = Secrets("w-several", new BuildSecretValues { Secrets = new Dictionary<string, byte[]> { ["k"] = "v"u8.ToArray() } });
        var digest = await fx.PublishTarAsync(TarOf(("app/in.txt", "input\n")));
        var mounts = new[]
        {
            new RunStepMount { Type = "bind", Target = "/opt/in", From = new CopySource { ContextDigest = digest }, Source = "app", ReadOnly = true },
            Cache("/opt/cache/deep/dir", "several-" + Guid.NewGuid().ToString("N")[..6]),
            new RunStepMount { Type = "tmpfs", Target = "/opt/tmp" },
            new RunStepMount { Type = "secret", Id = "k" , Target = "/run/secrets/k" },
        };

        var (result, output) = await fx.ExecuteAsync(fx.Job(Run("cat /opt/in/in.txt /run/secrets/k; echo; echo c > /opt/cache/deep/dir/c; echo t > /opt/tmp/t; echo mine > /opt/mine", mounts)), executor);

        Assert.Equal(["input", "v"], output);
        Assert.Equal(["opt", "opt/mine"], Names(await fx.ReadLayerAsync(result.Layer!)));
    }

    private Farm.Worker.Jobs.LayerJobExecutor Secrets(string name, BuildSecretValues values) =>
        new(new WorkerOptions { Name = name, StateDirectory = Path.Combine(fx.Root, name) }, fx.Stores, secrets: new InProcessBuildSecrets(_ => values));

    private static byte[] TarOf(params (string Name, string Content)[] files)
    {
        using var tar = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(tar, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var dir in files.Select(f => Path.GetDirectoryName(f.Name)!).Where(d => d.Length > 0).Distinct())
            {
                writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Directory, dir + "/") { Mode = (UnixFileMode)0x1ED });
            }

            foreach (var (fileName, content) in files)
            {
                writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, fileName)
                {
                    Mode = (UnixFileMode)0x1A4,
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
                });
            }
        }

        return tar.ToArray();
    }
}
