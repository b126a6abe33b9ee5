using System.Diagnostics;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Dockerfile.Graph;
using Farm.Oci;
using Farm.Oci.Layers;
using Farm.Oci.Registry;
using Farm.Oci.Stores;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>
/// A busybox image built the way the farm builds one: a busybox layer and a <c>/hello.txt</c> layer stored in a
/// cache repository of the anonymous registry, assembled from a planned Dockerfile.
/// </summary>
public sealed class BusyboxImageFixture : IAsyncLifetime
{
    public const string Hello = "hello from farm\n";

    public const string Dockerfile = """
        FROM busybox
        ENV A=b
        WORKDIR /app
        COPY hello.txt /
        EXPOSE 80
        LABEL org.example.team=farm
        CMD ["cat", "/hello.txt"]
        USER 1000
        """;

    public string Namespace { get; } = $"test-{Guid.NewGuid():N}";

    public string WorkDir { get; } = Directory.CreateTempSubdirectory("farm-assembly-").FullName;

    /// <summary>An empty Docker config, so the host user's credentials never leak into a test.</summary>
    public DockerConfig Credentials => new(Path.Combine(WorkDir, "docker", "config.json"));

    public BlobStoreLocator Locator { get; private set; } = null!;

    public RegistryBlobStore Cache { get; private set; } = null!;

    public AssembledImage Image { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        Locator = new BlobStoreLocator(credentials: Credentials);
        Cache = new RegistryBlobStore(Locator.ClientFor(TestRegistries.Anonymous), $"{Namespace}/cache");

        var rootfs = Directory.CreateDirectory(Path.Combine(WorkDir, "busybox", "bin")).FullName;
        File.Copy("/bin/busybox", Path.Combine(rootfs, "busybox"));
        File.SetUnixFileMode(Path.Combine(rootfs, "busybox"), (UnixFileMode)0b111_101_101);
        foreach (var applet in (await Tool.RunAsync("/bin/busybox", "--list")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (applet != "busybox")
            {
                File.CreateSymbolicLink(Path.Combine(rootfs, applet), "busybox");
            }
        }

        var helloDir = Directory.CreateDirectory(Path.Combine(WorkDir, "hello")).FullName;
        await File.WriteAllTextAsync(Path.Combine(helloDir, "hello.txt"), Hello);
        File.SetUnixFileMode(Path.Combine(helloDir, "hello.txt"), (UnixFileMode)0b110_100_100);

        var busybox = await StoreLayerAsync(Path.GetDirectoryName(rootfs)!);
        var hello = await StoreLayerAsync(helloDir);

        var baseConfig = ImageConfig.CreateEmpty();
        baseConfig.AddLayer(busybox.DiffId, new HistoryEntry { CreatedBy = "busybox-static", Created = DateTimeOffset.UnixEpoch });
        var stage = BuildGraph.Create(Dockerfile).Target;
        var helloRef = new LayerRef(hello.Descriptor.Digest.ToString(), hello.DiffId.ToString(), hello.Descriptor.MediaType, hello.Descriptor.Size);
        Image = new ImageAssembler().Assemble(new AssemblyRequest
        {
            Base = new BaseImage { Config = baseConfig, Layers = [busybox.Descriptor] },
            Steps = [.. stage.Steps.Select(s => AssemblyStep.From(s, s.Instruction == "COPY" ? helloRef : null))],
            Config = stage.Config,
            Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        });
    }

    public Task DisposeAsync()
    {
        Locator.Dispose();
        Directory.Delete(WorkDir, recursive: true);
        return Task.CompletedTask;
    }

    public string Reference(string registry, string repository, string tag = "1") => $"{registry}/{Namespace}/{repository}:{tag}";

    private async Task<LayerResult> StoreLayerAsync(string directory)
    {
        using var blob = new MemoryStream();
        var layer = await LayerWriter.WriteDirectoryAsync(directory, blob, new LayerWriteOptions(), CancellationToken.None);
        blob.Position = 0;
        await Cache.PutAsync(layer.Descriptor, blob, CancellationToken.None);
        return layer;
    }
}

/// <summary>Pushes the busybox image and checks it with skopeo and podman.</summary>
public sealed class PushTests(BusyboxImageFixture fixture) : IClassFixture<BusyboxImageFixture>
{
    [Fact]
    public async Task Pushed_image_has_the_config_runs_and_a_second_repository_mounts_every_layer()
    {
        var pusher = new ImagePusher(fixture.Locator.ClientFor);
        var app = fixture.Reference(TestRegistries.Anonymous, "app");
        var reported = new List<BlobPushed>();
        var first = await pusher.PushAsync(fixture.Image, [app], [fixture.Cache], new SyncProgress(reported), CancellationToken.None);

        Assert.Equal(fixture.Image.Digest, first.Digest);
        Assert.Equal(first.Blobs.Count, reported.Count);
        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{app}"))!["config"]!;
        Assert.Contains("A=b", config["Env"]!.AsArray().Select(e => (string?)e));
        Assert.Equal(["cat", "/hello.txt"], config["Cmd"]!.AsArray().Select(e => (string?)e));
        Assert.Equal("/app", (string?)config["WorkingDir"]);
        Assert.Equal(["80/tcp"], config["ExposedPorts"]!.AsObject().Select(p => p.Key));
        Assert.Equal("farm", (string?)config["Labels"]!["org.example.team"]);
        var history = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{app}"))!["history"]!.AsArray();
        Assert.Equal(
            [("busybox-static", false), ("ENV A=b", true), ("WORKDIR /app", true), ("COPY hello.txt / # buildkit", false), ("EXPOSE map[80/tcp:{}]", true),
             ("LABEL org.example.team=farm", true), ("CMD [\"cat\" \"/hello.txt\"]", true), ("USER 1000", true)],
            history.Select(h => ((string?)h!["created_by"], h["empty_layer"] is not null)));

        try
        {
            Assert.Equal(BusyboxImageFixture.Hello, await Tool.RunAsync("podman", "run", "--rm", "--runtime", "runc", "--tls-verify=false", app));
        }
        finally
        {
            await RemovePodmanImageAsync(app);
        }

        var other = fixture.Reference(TestRegistries.Anonymous, "other");
        var second = await pusher.PushAsync(fixture.Image, [other, fixture.Reference(TestRegistries.Anonymous, "other", "latest")], [fixture.Cache], null, CancellationToken.None);
        var layers = second.Blobs.Where(b => b.Blob.Digest != fixture.Image.ConfigDescriptor.Digest).ToList();
        Assert.Equal(fixture.Image.Manifest.Layers.Count, layers.Count);
        Assert.All(layers, b => Assert.Equal(BlobOutcome.Mounted, b.Outcome));
        Assert.Equal(2, second.References.Count);
        var inspected = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{fixture.Reference(TestRegistries.Anonymous, "other", "latest")}"))!;
        Assert.Equal(fixture.Image.Digest.ToString(), (string?)inspected["Digest"]);
    }

    [Fact]
    public async Task Push_to_another_registry_copies_the_blobs_with_credentials_from_docker_login()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);
        var dockerDir = Path.Combine(fixture.WorkDir, "login");
        var login = new DockerConfig(Path.Combine(dockerDir, "config.json"));
        await login.LoginAsync(TestRegistries.Basic, new RegistryCredential { Username = TestRegistries.BasicUser, Password = TestRegistries.BasicPassword }, CancellationToken.None);
        using var locator = new BlobStoreLocator(credentials: login);
        var pusher = new ImagePusher(locator.ClientFor);
        var target = fixture.Reference(TestRegistries.Basic, "app");

        var result = await pusher.PushAsync(fixture.Image, [target], [fixture.Cache], null, CancellationToken.None);

        Assert.All(result.Blobs, b => Assert.Equal(BlobOutcome.Uploaded, b.Outcome));
        var inspected = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--authfile", login.Path, $"docker://{target}"))!;
        Assert.Equal(fixture.Image.Digest.ToString(), (string?)inspected["Digest"]);

        var again = await pusher.PushAsync(fixture.Image, [target], [fixture.Cache], null, CancellationToken.None);
        Assert.All(again.Blobs, b => Assert.Equal(BlobOutcome.Exists, b.Outcome));
    }

    [Fact]
    public async Task A_missing_blob_fails_the_push_before_any_tag_is_written()
    {
        var missing = new LayerRef("sha256:" + new string('e', 64), "sha256:" + new string('f', 64), MediaTypes.OciLayerGzip, 123);
        var image = new ImageAssembler().Assemble(new AssemblyRequest
        {
            Base = new BaseImage { Config = fixture.Image.Config, Layers = fixture.Image.Manifest.Layers },
            Steps = [new AssemblyStep { CreatedBy = "RUN lost # buildkit", IsLayerStep = true, Layer = missing }],
            Config = new StageImageConfig(),
            ConfigIncludesBase = false,
            Created = DateTimeOffset.UnixEpoch,
        });
        var client = fixture.Locator.ClientFor(TestRegistries.Anonymous);
        var repository = $"{fixture.Namespace}/partial";

        var error = await Assert.ThrowsAsync<BlobUnavailableException>(() =>
            new ImagePusher(fixture.Locator.ClientFor).PushAsync(image, [$"{TestRegistries.Anonymous}/{repository}:1"], [fixture.Cache], null, CancellationToken.None));

        Assert.StartsWith("FARM4111", error.Message, StringComparison.Ordinal);
        Assert.Null(await client.HeadManifestAsync(repository, "1", CancellationToken.None));

        // The blobs that were there did arrive: only the tag is withheld.
        Assert.NotNull(await client.StatBlobAsync(repository, fixture.Image.Manifest.Layers[0].Digest, CancellationToken.None));
    }

    [Fact]
    public async Task Digest_references_are_not_push_targets()
    {
        var error = await Assert.ThrowsAsync<InvalidPushTargetException>(() =>
            new ImagePusher(fixture.Locator.ClientFor).PushAsync(fixture.Image, [$"{TestRegistries.Anonymous}/x/y@{fixture.Image.Digest}"], [fixture.Cache], null, CancellationToken.None));
        Assert.StartsWith("FARM4110", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(FlakyProxy.ApiCheckFault.ServiceUnavailable, 2)]
    // .NET's handler itself sends a request again on a new connection that closed before any answer, a few times;
    // six resets are more than it absorbs, so only the client's own retries get the push through.
    [InlineData(FlakyProxy.ApiCheckFault.Reset, 6)]
    public async Task A_push_rides_out_failed_api_checks(FlakyProxy.ApiCheckFault fault, int faults)
    {
        // The registry behind a proxy that fails its first API checks: the first contact is retried like any request.
        await using var proxy = new FlakyProxy(int.Parse(TestRegistries.Anonymous.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)) { Open = true };
        proxy.FailApiChecks(faults, fault);
        using var locator = new BlobStoreLocator(credentials: fixture.Credentials);
        var repository = $"{fixture.Namespace}/proxied-{fault.ToString().ToLowerInvariant()}";

        var result = await new ImagePusher(locator.ClientFor).PushAsync(fixture.Image, [$"127.0.0.1:{proxy.Port}/{repository}:1"], [fixture.Cache], null, CancellationToken.None);

        Assert.Equal(faults, proxy.ApiCheckFaults);
        Assert.Equal(fixture.Image.Digest, result.Digest);
        var stored = await fixture.Locator.ClientFor(TestRegistries.Anonymous).HeadManifestAsync(repository, "1", CancellationToken.None);
        Assert.Equal(fixture.Image.Digest, stored?.Digest);
    }

    [Fact]
    public async Task Ten_concurrent_pushes_to_one_repository_all_land_and_link_each_shared_blob_once()
    {
        // One client, as one coordinator pushes the builds it runs: images that share every layer, each its own tag.
        // Linking a blob the repository has again is what made the registry refuse a manifest (DIGEST_INVALID).
        for (var round = 0; round < 3; round++)
        {
            var results = await PushConcurrentlyAsync($"{fixture.Namespace}/together{round}", linkAgain: false);

            foreach (var layer in fixture.Image.Manifest.Layers)
            {
                var outcomes = results.SelectMany(r => r.Blobs).Where(b => b.Blob.Digest == layer.Digest).Select(b => b.Outcome).ToList();
                Assert.Equal(10, outcomes.Count);
                Assert.Equal(1, outcomes.Count(o => o != BlobOutcome.Exists));
            }
        }
    }

    [Fact]
    public async Task Concurrent_pushes_ride_out_another_client_linking_their_blobs_again()
    {
        // Another client (another coordinator, another tool) mounting the same blobs into the repository the whole
        // time: the registry then reads a link while it is rewritten and refuses some manifests with DIGEST_INVALID.
        for (var round = 0; round < 3; round++)
        {
            await PushConcurrentlyAsync($"{fixture.Namespace}/apart{round}", linkAgain: true);
        }
    }

    /// <summary>
    /// Ten images on the fixture's layers, with configs that differ by their time, pushed at once to one repository,
    /// each to its own tag; with <paramref name="linkAgain"/>, two loops of plain HTTP mounts of the same layers into
    /// that repository run meanwhile. Checks every tag names its image.
    /// </summary>
    private async Task<ImagePushResult[]> PushConcurrentlyAsync(string repository, bool linkAgain)
    {
        var images = Enumerable.Range(0, 10).Select(i => new ImageAssembler().Assemble(new AssemblyRequest
        {
            Base = new BaseImage { Config = fixture.Image.Config, Layers = fixture.Image.Manifest.Layers },
            Steps = [],
            Config = new StageImageConfig(),
            ConfigIncludesBase = false,
            Created = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000 + i),
        })).ToList();
        using var stop = new CancellationTokenSource();
        var linkers = new List<Task>();
        if (linkAgain)
        {
            await new ImagePusher(fixture.Locator.ClientFor).PushAsync(images[0], [$"{TestRegistries.Anonymous}/{repository}:seed"], [fixture.Cache], null, CancellationToken.None);
            linkers.AddRange(Enumerable.Range(0, 2).Select(_ => MountLoopAsync(repository, stop.Token)));
        }

        using var start = new SemaphoreSlim(0, images.Count);
        var pushes = images.Select((image, i) => Task.Run(async () =>
        {
            await start.WaitAsync();
            return await new ImagePusher(fixture.Locator.ClientFor).PushAsync(image, [$"{TestRegistries.Anonymous}/{repository}:{i}"], [fixture.Cache], null, CancellationToken.None);
        })).ToList();
        start.Release(images.Count);
        ImagePushResult[] results;
        try
        {
            results = await Task.WhenAll(pushes);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(linkers);
        }

        var client = fixture.Locator.ClientFor(TestRegistries.Anonymous);
        for (var i = 0; i < images.Count; i++)
        {
            Assert.Equal(images[i].Digest, results[i].Digest);
            var stored = await client.HeadManifestAsync(repository, i.ToString(System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None);
            Assert.Equal(images[i].Digest, stored?.Digest);
        }

        return results;
    }

    /// <summary>Mounts the fixture's layers from its cache into <paramref name="repository"/> over and over, as a client without Farm's care would.</summary>
    private async Task MountLoopAsync(string repository, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://{TestRegistries.Anonymous}/") };
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var layer in fixture.Image.Manifest.Layers)
            {
                try
                {
                    using var response = await http.PostAsync($"v2/{repository}/blobs/uploads/?mount={layer.Digest}&from={fixture.Cache.Repository}", null, cancellationToken);
                    Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
                    // Hundreds of mounts a second from the two loops, as busy clients, not a loop that holds the
                    // registry's links rewritten for longer than any client's retries on a starved machine.
                    await Task.Delay(5, cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    internal static async Task RemovePodmanImageAsync(string reference)
    {
        using var process = Process.Start(new ProcessStartInfo("podman", ["rmi", "-f", reference]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await process.WaitForExitAsync();
    }

    /// <summary>Records synchronously (Progress&lt;T&gt; posts to the thread pool, so a count could race).</summary>
    private sealed class SyncProgress(List<BlobPushed> sink) : IProgress<BlobPushed>
    {
        public void Report(BlobPushed value)
        {
            lock (sink)
            {
                sink.Add(value);
            }
        }
    }
}
