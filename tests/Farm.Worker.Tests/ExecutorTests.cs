using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Stores;
using Farm.Testing;
using Farm.Worker.Jobs;

namespace Farm.Worker.Tests;

/// <summary>
/// BuildLayer jobs through <see cref="LayerJobExecutor"/> against the real registry, overlayfs and runc; the layers
/// it uploads are read back with the BCL's tar reader and unpacked with umoci.
/// </summary>
[Collection(ExecutorCollection.Name)]
public sealed class ExecutorTests(ExecutorFixture fx)
{
    /// <summary>Paths the sandbox mounts on; none may appear in a layer.</summary>
    private static readonly string[] SandboxPaths = ["proc", "dev", "sys", "dev/shm", "dev/pts", "dev/mqueue", "etc/resolv.conf", "etc/hosts", "etc/hostname"];

    [Fact]
    public async Task A_run_that_adds_modifies_and_deletes_makes_a_layer_that_umoci_unpacks_to_the_expected_tree()
    {
        var (result, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(
            "echo new > /new.txt && echo changed > /etc/keep && rm /etc/todelete && rm -r /var/junk")));

        var layer = Assert.IsType<LayerRef>(result.Layer);
        var entries = await fx.ReadLayerAsync(layer);
        var names = entries.Select(e => e.Name).ToList();
        Assert.Contains("etc/.wh.todelete", names);
        Assert.Contains("var/.wh.junk", names);
        Assert.Equal("new\n", entries.Single(e => e.Name == "new.txt").Content);
        Assert.DoesNotContain(names, n => SandboxPaths.Contains(n));

        var bundle = await UnpackAsync(layer);
        var rootfs = Path.Combine(bundle, "rootfs");
        Assert.Equal("new\n", File.ReadAllText(Path.Combine(rootfs, "new.txt")));
        Assert.Equal("changed\n", File.ReadAllText(Path.Combine(rootfs, "etc", "keep")));
        Assert.Equal("lower\n", File.ReadAllText(Path.Combine(rootfs, "etc", "motd")));
        Assert.False(File.Exists(Path.Combine(rootfs, "etc", "todelete")), "the deleted file is still in the unpacked image");
        Assert.False(Directory.Exists(Path.Combine(rootfs, "var", "junk")), "the deleted directory is still in the unpacked image");
        Assert.True(Directory.Exists(Path.Combine(rootfs, "var")), "deleting /var/junk must not delete /var");
        Assert.True(File.Exists(Path.Combine(rootfs, "bin", "busybox")));
    }

    [Fact]
    public async Task A_failing_run_reports_its_exit_code_and_the_tail_of_its_output()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("echo oops; exit 3"))));

        var failure = Assert.IsAssignableFrom<IStepFailure>(e);
        Assert.Equal(3, failure.ExitCode);
        Assert.Contains("oops", failure.OutputTail);
        Assert.Contains("FARM3002", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_run_as_user_app_creates_files_owned_by_uid_1000()
    {
        var (result, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(
            "id -u && touch /home/app/mine", r => r with { User = "app" })));

        Assert.Contains("1000", output);
        var entries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer));
        var mine = entries.Single(e => e.Name == "home/app/mine");
        Assert.Equal((1000, 1000), (mine.Uid, mine.Gid));
    }

    [Fact]
    public async Task A_RUN_step_cannot_reach_the_farms_redis_or_registry_on_the_workers_loopback()
    {
        // The probe of issue 15: a step that talks to Redis and reads the registry's catalog, as a hostile Dockerfile would.
        var probe = "for t in 127.0.0.1:6379 10.0.2.2:6379 127.0.0.1:5100 10.0.2.2:5100; do " +
            "if printf 'PING\\r\\n' | nc -w 3 ${t%:*} ${t#*:} >/dev/null 2>&1; then echo reached-$t; else echo refused-$t; fi; done";
        foreach (var port in (int[])[6379, 5100])
        {
            // From the worker itself they answer: the step's refusals below are its network's doing.
            using var client = new System.Net.Sockets.TcpClient();
            try
            {
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                Assert.Fail($"nothing listens on 127.0.0.1:{port} ({e.Message}): start the services with infra/up.sh");
            }
        }

        var (_, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(probe)));

        Assert.Equal(4, output.Count(l => l.StartsWith("refused-", StringComparison.Ordinal)));
        Assert.DoesNotContain(output, l => l.StartsWith("reached-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Network_none_leaves_only_loopback_while_host_sees_the_hosts_interfaces()
    {
        const string interfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
        var (_, none) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(interfaces, r => r with { Network = "none" })));
        var before = HostInterfaces();
        var (_, host) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(interfaces, r => r with { Network = "host" })));
        var after = HostInterfaces();

        Assert.Equal(["lo"], none);
        // Other tests running alongside add and remove veth pairs: the step must see every interface the host had
        // throughout, and none the host never had.
        Assert.Superset(before.Intersect(after).ToHashSet(), host.ToHashSet());
        Assert.Subset(before.Union(after).ToHashSet(), host.ToHashSet());
        Assert.Contains(host, i => i != "lo");

        static List<string> HostInterfaces() =>
            File.ReadLines("/proc/net/dev").Skip(2).Select(l => l.Split(':')[0].Trim()).ToList();
    }

    [Fact]
    public async Task Copy_from_the_context_lands_as_root_unless_chowned_and_add_extracts_a_tar_gz()
    {
        var context = await fx.PublishTarAsync(ContextTar());
        var from = new CopySource { ContextDigest = context };

        var (copied, _) = await fx.ExecuteAsync(fx.Job(Copy(StepKind.Copy, ["app"], "/opt/app", from)));
        var copiedEntries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(copied.Layer));
        var hello = copiedEntries.Single(e => e.Name == "opt/app/hello.txt");
        Assert.Equal("hello\n", hello.Content);
        Assert.Equal((0, 0), (hello.Uid, hello.Gid));
        Assert.Equal(0x1A4 /* 0644 */, hello.Mode & 0xFFF);

        var (chowned, _) = await fx.ExecuteAsync(fx.Job(Copy(StepKind.Copy, ["app/run.sh"], "/usr/local/bin/", from) with
        {
            Copy = Copy(StepKind.Copy, ["app/run.sh"], "/usr/local/bin/", from).Copy! with { Chown = "app", Chmod = "0755" },
        }));
        var run = (await fx.ReadLayerAsync(Assert.IsType<LayerRef>(chowned.Layer))).Single(e => e.Name == "usr/local/bin/run.sh");
        Assert.Equal((1000, 1000), (run.Uid, run.Gid));
        Assert.Equal(0x1ED /* 0755 */, run.Mode & 0xFFF);

        var (added, _) = await fx.ExecuteAsync(fx.Job(Copy(StepKind.Add, ["bundle.tar.gz"], "/srv/", from)));
        var addedEntries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(added.Layer));
        Assert.Equal("inner\n", addedEntries.Single(e => e.Name == "srv/x/inner.txt").Content);
        Assert.DoesNotContain(addedEntries, e => e.Name.EndsWith("bundle.tar.gz", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Workdir_that_creates_a_directory_makes_a_layer_and_a_run_that_changes_nothing_makes_none()
    {
        var (workdir, _) = await fx.ExecuteAsync(fx.Job(new LayerStep { Kind = StepKind.Workdir, Display = "WORKDIR /work/dir", Workdir = "/work/dir" }));
        var entries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(workdir.Layer));
        Assert.Equal(["work", "work/dir"], entries.Select(e => e.Name).Order(StringComparer.Ordinal).ToList());
        Assert.All(entries, e => Assert.Equal(TarEntryType.Directory, e.Type));

        var (nothing, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("true")));
        Assert.Null(nothing.Layer);
    }

    [Fact]
    public async Task Workdir_creates_its_directories_as_the_current_user_and_a_run_as_that_user_writes_there()
    {
        // USER app, WORKDIR /srv/app/work: BuildKit makes every directory it creates the user's.
        var (workdir, _) = await fx.ExecuteAsync(fx.Job(new LayerStep { Kind = StepKind.Workdir, Display = "WORKDIR /srv/app/work", Workdir = "/srv/app/work", WorkdirUser = "app" }));
        var layer = Assert.IsType<LayerRef>(workdir.Layer);
        var entries = await fx.ReadLayerAsync(layer);
        Assert.Equal(["srv", "srv/app", "srv/app/work"], entries.Select(e => e.Name).Order(StringComparer.Ordinal).ToList());
        Assert.All(entries, e => Assert.Equal((1000, 1000, 0x1ED), (e.Uid, e.Gid, e.Mode & 0xFFF)));

        var (run, output) = await fx.ExecuteAsync(fx.Job(
            ExecutorFixture.Run("id > id.txt && cat id.txt", r => r with { User = "app", WorkingDir = "/srv/app/work" }), fx.BaseLayer, layer));
        Assert.Contains(output, l => l.StartsWith("uid=1000(app) gid=1000(app)", StringComparison.Ordinal));
        var id = (await fx.ReadLayerAsync(Assert.IsType<LayerRef>(run.Layer))).Single(e => e.Name == "srv/app/work/id.txt");
        Assert.Equal((1000, 1000), (id.Uid, id.Gid));

        // An existing directory is left as it is: /etc stays root's, and nothing changes, so no layer.
        var (existing, _) = await fx.ExecuteAsync(fx.Job(new LayerStep { Kind = StepKind.Workdir, Display = "WORKDIR /etc", Workdir = "/etc", WorkdirUser = "app" }));
        Assert.Null(existing.Layer);
    }

    [Fact]
    public async Task Device_nodes_of_a_parent_are_applied_and_kept_but_a_run_cannot_use_them()
    {
        // A base as debootstrap leaves one: device nodes in /dev (hidden in a step by its own /dev) and elsewhere.
        var dir = Path.Combine(fx.Root, "devices-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(dir, "dev"));
        Directory.CreateDirectory(Path.Combine(dir, "srv"));
        Farm.Oci.IO.UnixFile.Mknod(Path.Combine(dir, "dev", "console"), 0x2000 | 0x1B6, 5, 1);
        Farm.Oci.IO.UnixFile.Mknod(Path.Combine(dir, "srv", "null"), 0x2000 | 0x1B6, 1, 3);
        Farm.Oci.IO.UnixFile.Mknod(Path.Combine(dir, "srv", "kmsg"), 0x2000 | 0x1A4, 1, 11);
        Farm.Oci.IO.UnixFile.Mknod(Path.Combine(dir, "srv", "pipe"), 0x1000 | 0x1A4, 0, 0);
        var devices = await fx.PublishDirectoryAsync(dir);

        var (result, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(
            "test -c /srv/kmsg && test -c /srv/null && test -p /srv/pipe && echo nodes; "
            + "for n in null kmsg; do (echo x > /srv/$n) 2>/dev/null && echo $n-written || echo $n-denied; done; "
            + "mknod /srv/made c 1 11 && { (echo x > /srv/made) 2>/dev/null && echo made-written || echo made-denied; }; "
            + "echo x > /dev/null && echo dev-null-works"),
            fx.BaseLayer, devices));

        // The nodes exist, the devices stay closed, even null's: the root file system is mounted nodev, and beyond it
        // the step's device rule opens runc's defaults only. The step's own /dev works.
        Assert.Equal(["nodes", "null-denied", "kmsg-denied", "made-denied", "dev-null-works"], output.Select(l => l.Trim()));
        var made = (await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer))).Single(e => e.Name == "srv/made");
        Assert.Equal(TarEntryType.CharacterDevice, made.Type);

        // The nodes a step made are in its layer with their numbers, as a parent's are kept in the image.
        var blob = await fx.Store.OpenReadAsync(Digest.Parse(result.Layer!.Digest), CancellationToken.None);
        await using (blob)
        {
            await using var gzip = new GZipStream(blob, CompressionMode.Decompress);
            await using var reader = new TarReader(gzip);
            var entry = await reader.GetNextEntryAsync();
            while (entry is not null && entry.Name != "srv/made")
            {
                entry = await reader.GetNextEntryAsync();
            }

            var node = Assert.IsAssignableFrom<PosixTarEntry>(entry);
            Assert.Equal((1, 11), (node.DeviceMajor, node.DeviceMinor));
        }
    }

    [Fact]
    public async Task Sandbox_mount_points_never_reach_a_layer_even_when_the_step_writes_next_to_them()
    {
        var (result, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(
            "echo x > /etc/written && cat /etc/hosts /etc/resolv.conf > /dev/null && ls /proc /sys /dev > /dev/null")));

        var names = (await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer))).Select(e => e.Name).ToList();
        Assert.Equal(["etc", "etc/written"], names.Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public async Task A_parent_layer_is_extracted_once_when_two_jobs_need_it_at_the_same_time()
    {
        using var executor = fx.NewExecutor("w-once");
        var jobs = new[] { fx.Job(ExecutorFixture.Run("echo 1 > /one")), fx.Job(ExecutorFixture.Run("echo 2 > /two")) };

        var results = await Task.WhenAll(jobs.Select(j => fx.ExecuteAsync(j, executor)));

        Assert.Equal(1, executor.Layers.Extractions);
        Assert.All(results, r => Assert.NotNull(r.Result.Layer));
        Assert.NotEqual(results[0].Result.Layer!.Digest, results[1].Result.Layer!.Digest);
    }

    [Fact]
    public async Task A_layer_this_worker_built_is_a_parent_of_its_next_job_without_being_fetched_and_another_worker_fetches_it()
    {
        using var builder = fx.NewExecutor("w-kept");
        var (first, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("head -c 100000 /dev/urandom > /random")), builder);
        var built = Assert.IsType<LayerRef>(first.Layer);
        var fetched = builder.BytesDownloaded;

        var (second, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("wc -c < /random | tee /count"), fx.BaseLayer, built), builder);

        Assert.Equal(["100000"], output.Select(l => l.Trim()));
        Assert.NotNull(second.Layer);
        Assert.Equal(fetched, builder.BytesDownloaded);

        // Elsewhere the same job fetches it from the store.
        using var other = fx.NewExecutor("w-other");
        var (_, elsewhere) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("wc -c < /random"), fx.BaseLayer, built), other);
        Assert.Equal(["100000"], elsewhere.Select(l => l.Trim()));
        Assert.Equal(fx.BaseLayer.Size + built.Size, other.BytesDownloaded);
    }

    [Fact]
    public async Task A_run_sees_only_its_own_processes_and_its_writes_to_root_stay_in_the_layer()
    {
        var marker = "farm-escape-" + Guid.NewGuid().ToString("N")[..8];
        var (result, output) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run(
            $"ls /proc | grep -c '^[0-9]' ; echo x > /{marker}")));

        var pids = int.Parse(Assert.Single(output), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(pids, 1, 4);
        Assert.False(File.Exists("/" + marker), "a RUN step wrote to the host's root file system");
        var names = (await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer))).Select(e => e.Name);
        Assert.Contains(marker, names);
    }

    private static LayerStep Copy(StepKind kind, string[] sources, string destination, CopySource from) => new()
    {
        Kind = kind,
        Display = $"{kind.ToString().ToUpperInvariant()} {string.Join(' ', sources)} {destination}",
        Copy = new CopyStep { Sources = sources, Destination = destination, From = from },
    };

    /// <summary>app/hello.txt (0644), app/run.sh (0600), bundle.tar.gz holding x/inner.txt; owned by 501 as on a laptop.</summary>
    private static byte[] ContextTar()
    {
        using var inner = new MemoryStream();
        using (var gzip = new GZipStream(inner, CompressionLevel.Fastest, leaveOpen: true))
        using (var writer = new TarWriter(gzip, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "x/") { Mode = (UnixFileMode)0x1ED });
            writer.WriteEntry(File("x/inner.txt", "inner\n", 0x1A4));
        }

        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "app/") { Mode = (UnixFileMode)0x1ED, Uid = 501, Gid = 20 });
            writer.WriteEntry(File("app/hello.txt", "hello\n", 0x1A4));
            writer.WriteEntry(File("app/run.sh", "#!/bin/sh\necho run\n", 0x180));
            var bundle = new PaxTarEntry(TarEntryType.RegularFile, "bundle.tar.gz") { Mode = (UnixFileMode)0x1A4, Uid = 501, Gid = 20 };
            inner.Position = 0;
            bundle.DataStream = inner;
            writer.WriteEntry(bundle);
        }

        return tar.ToArray();

        static PaxTarEntry File(string name, string content, int mode) => new(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)mode,
            Uid = 501,
            Gid = 20,
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
        };
    }

    /// <summary>Assembles base + <paramref name="layer"/> into an OCI layout and unpacks it with umoci; returns the bundle.</summary>
    private async Task<string> UnpackAsync(LayerRef layer)
    {
        var dir = Path.Combine(fx.Root, "img-" + Guid.NewGuid().ToString("N")[..6]);
        using var layout = await OciLayoutStore.OpenOrCreateAsync(Path.Combine(dir, "layout"), CancellationToken.None);
        var config = ImageConfig.CreateEmpty();
        var layers = new List<Descriptor>();
        foreach (var l in new[] { fx.BaseLayer, layer })
        {
            var descriptor = new Descriptor { MediaType = l.MediaType, Digest = Digest.Parse(l.Digest), Size = l.Size };
            var blob = await fx.Store.OpenReadAsync(descriptor.Digest, CancellationToken.None);
            await using (blob)
            {
                await layout.PutAsync(descriptor, blob, CancellationToken.None);
            }

            layers.Add(descriptor);
            config.AddLayer(Digest.Parse(l.DiffId), new HistoryEntry { CreatedBy = "test" });
        }

        var configDescriptor = await layout.PutBytesAsync(config.ToBytes(), MediaTypes.OciConfig, CancellationToken.None);
        var manifest = await layout.PutManifestAsync(new ImageManifest { Config = configDescriptor, Layers = layers }, CancellationToken.None);
        await layout.TagAsync("test", manifest, CancellationToken.None);

        var bundle = Path.Combine(dir, "bundle");
        await Tool.RunAsync("umoci", "unpack", "--image", Path.Combine(dir, "layout") + ":test", bundle);
        return bundle;
    }
}

/// <summary>Less common paths through the executor: heredoc files, COPY --from layers, zstd, failures that must leave nothing behind.</summary>
[Collection(ExecutorCollection.Name)]
public sealed class ExecutorEdgeTests(ExecutorFixture fx)
{
    [Fact]
    public async Task A_heredoc_file_is_available_to_the_run_but_is_not_in_the_layer()
    {
        var step = ExecutorFixture.Run("sh /farm-heredoc/script > /out", r => r with
        {
            Files = [new InlineFile("/farm-heredoc/script", "echo from-heredoc\n", 0x1ED)],
        });

        var (result, _) = await fx.ExecuteAsync(fx.Job(step));

        var entries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer));
        Assert.Equal(["out"], entries.Select(e => e.Name).ToList());
        Assert.Equal("from-heredoc\n", entries[0].Content);
    }

    [Fact]
    public async Task A_copy_heredoc_becomes_a_file_with_its_content_and_mode()
    {
        var step = new LayerStep
        {
            Kind = StepKind.Copy,
            Display = "COPY --chmod=755 <<EOF /usr/local/bin/hello",
            Copy = new CopyStep
            {
                Sources = ["EOF"],
                Destination = "/usr/local/bin/hello",
                Chmod = "755",
                From = new CopySource(),
                Files = [new InlineFile("EOF", "#!/bin/sh\necho hello\n", 0x1A4)],
            },
        };

        var (result, _) = await fx.ExecuteAsync(fx.Job(step));

        var entries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer));
        var file = Assert.Single(entries, e => e.Name == "usr/local/bin/hello");
        Assert.Equal("#!/bin/sh\necho hello\n", file.Content);
        Assert.Equal(0x1ED, file.Mode & 0xFFF);
    }

    [Fact]
    public async Task Copy_from_a_stage_made_of_several_layers_sees_the_upper_layers_changes()
    {
        var (stage, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("mkdir -p /out && echo built > /out/artifact && rm /etc/motd")));
        var stageLayers = new[] { fx.BaseLayer, stage.Layer! };
        var step = new LayerStep
        {
            Kind = StepKind.Copy,
            Display = "COPY --from=build /out/ /dist/",
            Copy = new CopyStep { Sources = ["/out/"], Destination = "/dist/", From = new CopySource { Layers = stageLayers } },
        };

        var (result, _) = await fx.ExecuteAsync(fx.Job(step));
        var entries = await fx.ReadLayerAsync(Assert.IsType<LayerRef>(result.Layer));
        Assert.Equal("built\n", entries.Single(e => e.Name == "dist/artifact").Content);

        var missing = step with { Copy = step.Copy with { Sources = ["/etc/motd"], Destination = "/x" } };
        var e = await Assert.ThrowsAnyAsync<FarmException>(() => fx.ExecuteAsync(fx.Job(missing)));
        Assert.Equal("FARM1204", e.Code);
    }

    [Fact]
    public async Task A_zstd_job_produces_a_zstd_layer()
    {
        var (result, _) = await fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("echo z > /z")) with { Compression = "zstd" });

        var layer = Assert.IsType<LayerRef>(result.Layer);
        Assert.Equal(MediaTypes.OciLayerZstd, layer.MediaType);
        var blob = await fx.Store.OpenReadAsync(Digest.Parse(layer.Digest), CancellationToken.None);
        await using (blob)
        {
            var magic = new byte[4];
            await blob.ReadExactlyAsync(magic);
            Assert.Equal(new byte[] { 0x28, 0xB5, 0x2F, 0xFD }, magic);
        }
    }

    [Fact]
    public async Task Failed_and_cancelled_jobs_leave_no_mount_snapshot_container_or_lease_behind()
    {
        using var executor = fx.NewExecutor("w-clean");
        var state = Path.Combine(fx.Root, "w-clean");
        await Assert.ThrowsAnyAsync<Exception>(() => fx.ExecuteAsync(fx.Job(ExecutorFixture.Run("exit 1")), executor));
        var emptyContext = await fx.PublishTarAsync(new byte[1024]);
        await Assert.ThrowsAnyAsync<FarmException>(() => fx.ExecuteAsync(fx.Job(new LayerStep
        {
            Kind = StepKind.Copy,
            Display = "COPY nothing /",
            Copy = new CopyStep { Sources = ["nothing"], Destination = "/", From = new CopySource { ContextDigest = emptyContext } },
        }), executor));

        using var cts = new CancellationTokenSource();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = executor.ExecuteAsync(fx.Job(ExecutorFixture.Run("echo started; sleep 60")), (_, line) =>
        {
            if (line == "started")
            {
                started.TrySetResult();
            }

            return Task.CompletedTask;
        }, cts.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        Assert.Empty(Mounts.Under(state));
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(state, "ov", "s")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(state, "tmp")));
        Assert.Equal(string.Empty, (await Tool.RunAsync("runc", "--root", Path.Combine(state, "run", "runc"), "list", "--quiet")).Trim());
    }
}
