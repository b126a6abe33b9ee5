using System.Text.Json.Nodes;
using Farm.Dockerfile.Planning;
using Farm.Oci.Images;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Cache;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Ignore;
using Farm.Oci;
using Farm.Oci.Net;
using Farm.Oci.Registry;
using Farm.Oci.Stores;
using Farm.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Coordinator.Tests;

/// <summary>
/// Whole builds through the embedded farm (silo, in-memory bus, the real worker with runc): a busybox base image in
/// the test registry, a context in the cache store, the orchestrator from Dockerfile to pushed image.
/// </summary>
[Collection(GrainCollection.Name)]
public sealed class BuildOrchestratorTests(GrainFixture fixture) : IAsyncLifetime
{
    private const string Dockerfile = SubmitContext.TwoStages + """
        ENV A=b
        WORKDIR /srv
        CMD ["cat","/hello.txt"]
        """;

    private readonly string _namespace = $"test-{Guid.NewGuid():N}";
    private readonly string _work = Directory.CreateTempSubdirectory("farm-build-").FullName;
    private readonly List<string> _podmanImages = [];
    private BlobStoreLocator _stores = null!;
    private IBlobStore _cacheStore = null!;
    private string _base = null!;

    public async Task InitializeAsync()
    {
        _stores = new BlobStoreLocator(credentials: new DockerConfig(Path.Combine(_work, "docker", "config.json")));
        _cacheStore = await _stores.OpenAsync(fixture.Store.StoreAddress, CancellationToken.None);

        // The base image: the fixture's busybox layer with a PATH, pushed as <namespace>/busybox:1.
        _base = $"{TestRegistries.Anonymous}/{_namespace}/busybox:1";
        await SubmitContext.PushBusyboxAsync(_stores, _cacheStore, fixture.Store.BaseLayer, _base);
        Directory.CreateDirectory(Path.Combine(_work, "ctx"));
    }

    public async Task DisposeAsync()
    {
        foreach (var image in _podmanImages)
        {
            await PushTests.RemovePodmanImageAsync(image);
        }

        _stores.Dispose();
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task Multi_stage_build_pushes_a_runnable_image_a_rebuild_is_fully_cached_and_a_changed_file_rebuilds_from_its_copy()
    {
        await File.WriteAllTextAsync(Path.Combine(_work, "ctx", "hello.txt"), "hello from the farm\n");
        var app1 = $"{TestRegistries.Anonymous}/{_namespace}/app:1";
        var first = await BuildAsync(app1);

        Assert.Equal(["s0/1", "s1/1", "s1/2", "s1/4"], first.Result.Steps.Select(s => s.StepId));
        Assert.All(first.Result.Steps, s => Assert.False(s.Cached));
        Assert.All(first.Result.Steps, s => Assert.Equal("embedded", s.Worker));
        Assert.Equal(4, first.Jobs);
        Assert.Equal([app1], first.Result.Pushed);
        Assert.Equal(4, first.Events.OfType<StepFinished>().Count());
        Assert.Single(first.Events.OfType<BuildFinished>());
        Assert.Single(first.Events.OfType<BaseImageResolved>());

        var config = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{app1}"))!["config"]!;
        Assert.Equal(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b"], config["Env"]!.AsArray().Select(e => (string?)e));
        Assert.Equal("/srv", (string?)config["WorkingDir"]);
        Assert.Equal(["cat", "/hello.txt"], config["Cmd"]!.AsArray().Select(e => (string?)e));
        var inspected = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{app1}"))!;
        Assert.Equal(first.Result.ImageDigest, (string?)inspected["Digest"]);

        Assert.Equal("hello from the farm\n", await PodmanRunAsync(app1));
        Assert.Equal("built\n", await PodmanRunAsync(app1, "cat", "/out"));

        // Unchanged: every layer step comes from the action cache, no job runs, the image is the same.
        var second = await BuildAsync(app1);
        Assert.All(second.Result.Steps, s => Assert.True(s.Cached, $"{s.StepId} was not cached"));
        Assert.Equal(0, second.Jobs);
        Assert.Equal(first.Result.ImageDigest, second.Result.ImageDigest);

        // hello.txt changed: only its COPY and the layer steps after it in that stage run again.
        await File.WriteAllTextAsync(Path.Combine(_work, "ctx", "hello.txt"), "hello again\n");
        var app2 = $"{TestRegistries.Anonymous}/{_namespace}/app:2";
        var third = await BuildAsync(app2);
        Assert.Equal(["s0/1", "s1/1"], third.Result.Steps.Where(s => s.Cached).Select(s => s.StepId));
        Assert.Equal(["s1/2", "s1/4"], third.Result.Steps.Where(s => !s.Cached).Select(s => s.StepId));
        Assert.Equal(2, third.Jobs);
        Assert.NotEqual(first.Result.ImageDigest, third.Result.ImageDigest);
        Assert.Equal("hello again\n", await PodmanRunAsync(app2));
    }

    [Fact]
    public async Task A_failing_run_fails_the_build_naming_the_step_its_exit_code_and_output()
    {
        var events = new SyncProgress();
        var request = await RequestAsync("""
            ARG BASE
            FROM ${BASE}
            RUN echo doomed-output; exit 7
            """, []);

        var error = await Assert.ThrowsAsync<BuildStepFailedException>(() => Orchestrator().RunAsync(request, events, CancellationToken.None));

        Assert.Equal("FARM4201", error.Code);
        Assert.Equal("s0/1", error.StepId);
        Assert.Equal(7, error.ExitCode);
        Assert.Contains("s0/1", error.Message, StringComparison.Ordinal);
        Assert.Contains("exited with code 7", error.Message, StringComparison.Ordinal);
        Assert.Contains("doomed-output", error.Message, StringComparison.Ordinal);
        // The output and the worker's code appear once, not once from the worker's message and once from the step's.
        Assert.Single(error.Message.Split('\n'), line => line.Trim() == "doomed-output");
        Assert.Equal(2, error.Message.Split("FARM3002").Length);
        var failed = Assert.Single(events.Events.OfType<BuildFailed>());
        Assert.Equal("FARM4201", failed.Code);
        Assert.Empty(events.Events.OfType<BuildFinished>());
    }

    [Fact]
    public async Task A_stage_built_on_a_stage_exports_its_rootfs_and_no_cache_runs_every_step_again()
    {
        const string onStage = """
            ARG BASE
            FROM ${BASE} AS a
            RUN echo a > /a
            FROM a
            RUN cat /a > /b
            """;
        var rootfs = Path.Combine(_work, "rootfs");
        var request = await RequestAsync(onStage, []) with { Output = OutputSpec.Parse($"type=local,dest={rootfs}") };

        var first = await Orchestrator().RunAsync(request, null, CancellationToken.None);

        Assert.Equal(["s0/1", "s1/1"], first.Steps.Select(s => s.StepId));
        Assert.Equal("a\n", await File.ReadAllTextAsync(Path.Combine(rootfs, "b")));
        Assert.True(File.Exists(Path.Combine(rootfs, "bin", "busybox")));
        Assert.Equal(3, first.Image.Manifest.Layers.Count);

        var again = await RequestAsync(onStage, []) with { NoCache = true };
        var second = await Orchestrator().RunAsync(again, null, CancellationToken.None);
        Assert.All(second.Steps, s => Assert.False(s.Cached));
        Assert.Equal(2, fixture.Published.Count(j => j.BuildId == again.BuildId));
    }

    [Fact]
    public async Task Independent_stages_are_in_flight_at_the_same_time()
    {
        // The listener's RUN only ends when the talker's RUN reaches it (both on the host network): built one stage after the
        // other, the build could never finish. The token only bounds a broken build; nothing is timed.
        // The listener keeps listening until the talker's own word arrives: a stray connection from another test's loop
        // to a port it picked too (seen once under a full suite run) is not the talker.
        var port = FreePorts.Tcp();
        var word = "hi-" + Guid.NewGuid().ToString("N")[..8];
        var dockerfile = $$"""
            ARG BASE
            FROM ${BASE} AS listener
            RUN --network=host until nc -l -p {{port}} > /got < /dev/null && grep -qx {{word}} /got; do :; done
            FROM ${BASE} AS talker
            RUN --network=host until echo {{word}} | nc 127.0.0.1 {{port}}; do :; done; echo sent > /sent
            FROM ${BASE}
            COPY --from=listener /got /got
            COPY --from=talker /sent /sent
            """;
        var rootfs = Path.Combine(_work, "both");
        var request = await RequestAsync(dockerfile, []) with { Output = OutputSpec.Parse($"type=local,dest={rootfs}") };
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3));

        var result = await Orchestrator().RunAsync(request, null, guard.Token);

        Assert.Equal(4, result.JobsRun);
        Assert.Equal(word + "\n", await File.ReadAllTextAsync(Path.Combine(rootfs, "got")));
        Assert.Equal("sent\n", await File.ReadAllTextAsync(Path.Combine(rootfs, "sent")));
    }

    [Fact]
    public async Task A_base_image_that_does_not_exist_fails_before_any_job()
    {
        var events = new SyncProgress();
        var request = await RequestAsync($"FROM {TestRegistries.Anonymous}/{_namespace}/missing:1\nRUN true\n", []);

        var error = await Assert.ThrowsAsync<BaseImageUnavailableException>(() => Orchestrator().RunAsync(request, events, CancellationToken.None));

        Assert.StartsWith("FARM4202", error.Message, StringComparison.Ordinal);
        Assert.Contains("missing:1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Published, j => j.BuildId == request.BuildId);
        Assert.Equal("FARM4202", Assert.Single(events.Events.OfType<BuildFailed>()).Code);
    }

    [Fact]
    public async Task A_copy_source_missing_from_the_context_fails_before_any_job()
    {
        var request = await RequestAsync("ARG BASE\nFROM ${BASE}\nRUN true\nCOPY nothere.txt /\n", []);

        var error = await Assert.ThrowsAsync<BuildContextException>(() => Orchestrator().RunAsync(request, null, CancellationToken.None));

        Assert.StartsWith("FARM12", error.Code, StringComparison.Ordinal);
        Assert.Contains("nothere.txt", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Published, j => j.BuildId == request.BuildId);
    }

    [Fact]
    public async Task A_required_secret_the_build_was_not_given_is_refused_naming_the_line_before_any_job()
    {
        var request = await RequestAsync("ARG BASE\nFROM ${BASE}\nRUN true\nRUN --mount=type=secret,id=tok,required=true true\n", []);

        var error = await Assert.ThrowsAsync<BuildSecretMissingException>(() => Orchestrator().RunAsync(request, null, CancellationToken.None));

        Assert.StartsWith("FARM4311: Dockerfile:4:1: RUN --mount=type=secret,id=tok,required=true", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(fixture.Published, j => j.BuildId == request.BuildId);
    }

    [Fact]
    public async Task A_submission_whose_context_index_is_not_in_the_store_is_refused()
    {
        var submit = new SubmitBuild { Dockerfile = "FROM scratch\n", ContextDigest = "sha256:" + new string('0', 64), ContextIndexDigest = "sha256:" + new string('1', 64) };

        var error = await Assert.ThrowsAsync<ContextIndexUnavailableException>(() => Orchestrator().LoadRequestAsync(submit, fixture.Store.StoreAddress, CancellationToken.None));

        Assert.StartsWith("FARM4203", error.Message, StringComparison.Ordinal);
    }

    private BuildOrchestrator Orchestrator() => new(
        new Grains.GrainLayerBuilds(fixture.Grains),
        new VerifyingActionCache(new FileActionCache(Path.Combine(_work, "ac")), _cacheStore, NullLogger<VerifyingActionCache>.Instance),
        _stores,
        fixture.Services.GetRequiredService<Dispatch.BuildLogHub>());

    private async Task<(BuildResult Result, List<BuildEvent> Events, int Jobs)> BuildAsync(string tag)
    {
        var events = new SyncProgress();
        var request = await RequestAsync(Dockerfile, [tag]);
        var result = await Orchestrator().RunAsync(request, events, CancellationToken.None);
        return (result, events.Events, fixture.Published.Count(j => j.BuildId == request.BuildId));
    }

    /// <summary>Packs the context directory, stores its tar and index in the cache store and submits, as the CLI does.</summary>
    private async Task<BuildRequest> RequestAsync(string dockerfile, IReadOnlyList<string> tags)
    {
        var (tar, index) = await BuildContextPacker.PackAndStoreAsync(Path.Combine(_work, "ctx"), PatternMatcher.Empty, _cacheStore, CancellationToken.None);
        var submit = new SubmitBuild
        {
            BuildId = Guid.NewGuid(),
            Dockerfile = dockerfile,
            ContextDigest = tar.Digest.ToString(),
            ContextIndexDigest = index.Digest.ToString(),
            BuildArgs = new Dictionary<string, string> { ["BASE"] = _base },
            Tags = tags,
            Push = tags.Count > 0,
            // The test that runs stages side by side has them meet on this machine's loopback (RUN --network=host).
            Entitlements = [Entitlements.NetworkHost],
        };
        return await Orchestrator().LoadRequestAsync(submit, fixture.Store.StoreAddress, CancellationToken.None);
    }

    private async Task<string> PodmanRunAsync(string reference, params string[] command)
    {
        _podmanImages.Add(reference);
        return await Tool.RunAsync("podman", ["run", "--rm", "--runtime", "runc", "--tls-verify=false", reference, .. command]);
    }

    /// <summary>Records synchronously: stages report from several threads.</summary>
    private sealed class SyncProgress : IProgress<BuildEvent>
    {
        private readonly List<BuildEvent> _events = [];

        public List<BuildEvent> Events
        {
            get
            {
                lock (_events)
                {
                    return [.. _events];
                }
            }
        }

        public void Report(BuildEvent value)
        {
            lock (_events)
            {
                _events.Add(value);
            }
        }
    }
}
