using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// Local farm daemons, each on a state directory of its own (its own action cache, image store and worker: nothing
/// shared but the registry), and a busybox base pushed to a fresh repository of the anonymous registry, so that a
/// second "machine" can pull the same base by digest.
/// </summary>
public sealed class RegistryCacheFixture : IAsyncLifetime
{
    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private readonly List<string> _states = [];
    private readonly Lock _lock = new();

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-regcache-").FullName;

    /// <summary>A repository of the anonymous registry made for this class: caches and the base go under it.</summary>
    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public string Base => $"{Repository}/busybox:1";

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        var state = NewState();
        Ok(await Farm(state, "import", "-c", "CMD [\"sh\"]", BuildFixture.BusyboxRootfs(Directory), Base));
        Ok(await Farm(state, "push", Base));
    }

    public async Task DisposeAsync()
    {
        foreach (var state in _states)
        {
            await Farm(state, "daemon", "stop");
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>A fresh state directory: a machine that never built anything (its daemon starts on first use).</summary>
    public string NewState()
    {
        var state = Path.Combine(Directory, "state-" + Guid.NewGuid().ToString("N")[..8]);
        lock (_lock)
        {
            _states.Add(state);
        }

        return state;
    }

    internal Task<CliProcess.Result> Farm(string state, params string[] args) => FarmCli.RunAsync(
        new Dictionary<string, string>
        {
            ["FARM_STATE_DIR"] = state,
            ["DOCKER_CONFIG"] = Path.Combine(Directory, "docker"),
            ["FARM_HOST"] = string.Empty,
        },
        null,
        args);

    /// <summary>A new context directory holding <paramref name="files"/> (path, content).</summary>
    public string Context(params (string Path, string Content)[] files)
    {
        var dir = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        foreach (var (path, content) in files)
        {
            File.WriteAllText(Path.Combine(dir, path), content, new UTF8Encoding(false));
        }

        return dir;
    }

    internal static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, result.ToString());
}

/// <summary>
/// <c>--cache-to type=registry</c> and <c>--cache-from</c> on the local farm: a machine with an empty state (no
/// action cache, no layers, no Redis) reuses what another exported to the registry, and gets the same image.
/// </summary>
public sealed class RegistryCacheTests(RegistryCacheFixture farm) : IClassFixture<RegistryCacheFixture>
{
    [Fact]
    public async Task A_fresh_machine_seeded_from_an_exported_cache_runs_no_step_and_gets_the_same_image()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var context = Context(marker);
        var cache = $"{farm.Repository}/cache:{marker}";
        var a = farm.NewState();

        var exported = await Build(a, context, "--cache-to", $"type=registry,ref={cache}");

        RegistryCacheFixture.Ok(exported);
        Assert.Contains($"exporting cache to registry {cache}", exported.Stderr, StringComparison.Ordinal);
        Assert.Matches(@"writing cache manifest sha256:[0-9a-f]{64}: 4 entries, 4 layers", exported.Stderr);
        var b = farm.NewState();
        var imported = await Build(b, context, "--cache-from", cache);

        RegistryCacheFixture.Ok(imported);
        Assert.Contains($"importing cache manifest from {cache}", imported.Stderr, StringComparison.Ordinal);
        Assert.Equal(4, Regex.Count(imported.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
        // No RUN ran on b: its output (the marker) is nowhere, and the image, whose RUN layers hold the nanosecond the
        // RUN ran on a, is a's to the digest.
        Assert.False(Printed(imported, $"ran {marker}"), imported.ToString());
        Assert.Equal(Digest(exported), Digest(imported));
        var stampA = await farm.Farm(a, "run", "--rm", "--network", "none", Image(context), "cat", "/stamp");
        var stampB = await farm.Farm(b, "run", "--rm", "--network", "none", Image(context), "cat", "/stamp");
        RegistryCacheFixture.Ok(stampA);
        RegistryCacheFixture.Ok(stampB);
        Assert.Equal(stampA.Stdout, stampB.Stdout);

        // b's own cache took the entries: the next build there needs no --cache-from.
        var again = await Build(b, context);
        RegistryCacheFixture.Ok(again);
        Assert.Equal(4, Regex.Count(again.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
    }

    [Fact]
    public async Task The_exported_cache_is_an_OCI_artifact_of_keys_layers_and_dates_only()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var cache = $"{farm.Repository}/cache:{marker}";
        RegistryCacheFixture.Ok(await Build(farm.NewState(), Context(marker), "--build-arg", $"TOKEN=arg-{marker}", "--cache-to", $"type=registry,ref={cache}"));

        // skopeo, an independent client, reads the manifest; the config is fetched from the registry as a blob.
        var manifest = JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{cache}"))!;
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", (string?)manifest["mediaType"]);
        Assert.Equal("application/vnd.farm.buildcache.v1", (string?)manifest["artifactType"]);
        Assert.Equal("application/vnd.farm.buildcache.config.v1+json", (string?)manifest["config"]!["mediaType"]);
        Assert.Equal(4, manifest["layers"]!.AsArray().Count);
        using var http = new HttpClient();
        var repository = $"{farm.Repository}/cache"[(TestRegistries.Anonymous.Length + 1)..];
        var config = await http.GetStringAsync($"http://{TestRegistries.Anonymous}/v2/{repository}/blobs/{(string?)manifest["config"]!["digest"]}");
        var entries = JsonNode.Parse(config)!["entries"]!.AsArray();
        Assert.Equal(4, entries.Count);
        Assert.All(entries, e => Assert.Equal(["key", "layer", "created"], e!.AsObject().Select(p => p.Key)));
        // Nothing of the build's inputs: no file content, build arg, command or worker.
        Assert.DoesNotContain(marker, config, StringComparison.Ordinal);
        Assert.DoesNotContain("echo", config, StringComparison.Ordinal);
        foreach (var layer in manifest["layers"]!.AsArray())
        {
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"http://{TestRegistries.Anonymous}/v2/{repository}/blobs/{(string?)layer!["digest"]}"));
            Assert.True(head.IsSuccessStatusCode, $"layer {layer["digest"]} is not in {repository}: {head.StatusCode}");
        }
    }

    [Fact]
    public async Task A_changed_file_reruns_only_the_steps_from_its_COPY_on()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var cache = $"{farm.Repository}/cache:{marker}";
        RegistryCacheFixture.Ok(await Build(farm.NewState(), Context(marker), "--cache-to", $"type=registry,ref={cache}"));

        var state = farm.NewState();
        var changedContext = Context(marker, b: "changed");
        var dryRun = await farm.Farm(state, "build", "--dry-run", "--cache-from", cache, changedContext);
        var changed = await Build(state, changedContext, "--cache-from", $"type=registry,ref={cache}");

        // A dry run on the fresh machine asks the imported cache too.
        RegistryCacheFixture.Ok(dryRun);
        Assert.Contains("dry run: 2 of 4 layer steps would run", dryRun.Stdout, StringComparison.Ordinal);

        RegistryCacheFixture.Ok(changed);
        var steps = Steps(changed.Stderr);
        Assert.Equal(["CACHED", "CACHED", "RAN", "RAN"], steps);
        Assert.False(Printed(changed, $"ran {marker}"), changed.ToString());
    }

    [Fact]
    public async Task Mode_min_exports_the_image_stages_steps_and_mode_max_every_step()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var context = farm.Context(
            ("Dockerfile", $"""
                FROM {farm.Base} AS builder
                RUN echo built {marker} && date +%s%N > /artifact
                FROM {farm.Base}
                COPY --from=builder /artifact /artifact
                RUN echo final {marker} && date +%s%N > /stamp
                """));
        var min = $"{farm.Repository}/cache:{marker}-min";
        var max = $"{farm.Repository}/cache:{marker}-max";
        var exported = await Build(farm.NewState(), context, "--cache-to", $"type=registry,ref={min},mode=min", "--cache-to", $"type=registry,ref={max},mode=max");
        RegistryCacheFixture.Ok(exported);
        Assert.Matches($@"exporting cache to registry {Regex.Escape(min)}\n#\d+ writing cache manifest sha256:[0-9a-f]{{64}}: 2 entries", exported.Stderr);
        Assert.Matches($@"exporting cache to registry {Regex.Escape(max)}\n#\d+ writing cache manifest sha256:[0-9a-f]{{64}}: 3 entries", exported.Stderr);

        var fromMax = await Build(farm.NewState(), context, "--cache-from", max);
        var fromMin = await Build(farm.NewState(), context, "--cache-from", min);

        RegistryCacheFixture.Ok(fromMax);
        Assert.Equal(["CACHED", "CACHED", "CACHED"], Steps(fromMax.Stderr));
        Assert.Equal(Digest(exported), Digest(fromMax));
        RegistryCacheFixture.Ok(fromMin);
        // The builder stage was not exported: its RUN runs again; the final stage's steps, keyed by the builder's key
        // and not by its bytes, come from the cache, so the image is still the exporter's.
        Assert.True(Printed(fromMin, $"built {marker}"), fromMin.ToString());
        Assert.False(Printed(fromMin, $"final {marker}"), fromMin.ToString());
        Assert.Equal(2, Regex.Count(fromMin.Stderr, @"^#\d+ CACHED$", RegexOptions.Multiline));
        Assert.Equal(Digest(exported), Digest(fromMin));
    }

    [Fact]
    public async Task A_cache_reference_that_does_not_exist_is_a_warning_and_the_build_runs()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var missing = $"{farm.Repository}/cache:never-{marker}";

        var built = await Build(farm.NewState(), Context(marker), "--cache-from", $"type=registry,ref={missing}");

        RegistryCacheFixture.Ok(built);
        Assert.Matches($@"#\d+ WARNING: FARM4350: The build cache {Regex.Escape(missing)} was not imported: there is no such manifest", built.Stderr);
        Assert.Equal(["RAN", "RAN", "RAN", "RAN"], Steps(built.Stderr));
    }

    [Theory]
    [InlineData("--cache-to", "ref=127.0.0.1:5100/x/cache:1", "FARM2260")]
    [InlineData("--cache-to", "type=registry", "FARM2260")]
    [InlineData("--cache-to", "type=registry,ref=127.0.0.1:5100/x/cache:1,mode=all", "FARM2260")]
    [InlineData("--cache-to", "127.0.0.1:5100/x/cache:1", "FARM2260")]
    [InlineData("--cache-from", "type=registry,ref=UPPER case", "FARM2260")]
    [InlineData("--cache-to", "type=local,dest=/tmp/farm-cache", "FARM2261")]
    [InlineData("--cache-from", "type=gha", "FARM2261")]
    public async Task A_malformed_or_unsupported_cache_option_is_refused_before_anything_is_built(string flag, string value, string code)
    {
        var marker = Guid.NewGuid().ToString("N")[..10];

        var refused = await Build(farm.NewState(), Context(marker), flag, value);

        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith($"farm: {code}: {flag} '{value}'", refused.Stderr.Trim(), StringComparison.Ordinal);
        Assert.False(Printed(refused, $"ran {marker}"), refused.ToString());
    }

    [Fact]
    public async Task A_failed_export_fails_the_build_as_buildx_unless_ignore_error_is_set()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        // The htpasswd registry, with no credentials for it in this machine's Docker config: the push is refused.
        var refusing = $"{TestRegistries.Basic}/{marker}/cache:1";
        var state = farm.NewState();

        var failed = await Build(state, Context(marker), "--cache-to", $"type=registry,ref={refusing}");
        var ignored = await Build(state, Context(marker), "--cache-to", $"type=registry,ref={refusing},ignore-error=true");

        Assert.Equal(1, failed.ExitCode);
        Assert.Contains($"farm: FARM4351: The build cache could not be exported to {refusing}", failed.Stderr, StringComparison.Ordinal);
        RegistryCacheFixture.Ok(ignored);
        Assert.Matches($@"#\d+ WARNING: FARM4351: The build cache could not be exported to {Regex.Escape(refusing)}", ignored.Stderr);
    }

    private Task<CliProcess.Result> Build(string state, string context, params string[] flags) =>
        farm.Farm(state, ["build", "--progress", "plain", "-t", Image(context), .. flags, context]);

    /// <summary>The name each build of <paramref name="context"/> gives its image.</summary>
    private static string Image(string context) => $"regcache-{Path.GetFileName(context)}:1";

    /// <summary>A context whose Dockerfile has four layer steps: COPY a, RUN (a timestamp), COPY b, RUN (a timestamp).</summary>
    private string Context(string marker, string b = "b") => farm.Context(
        ("Dockerfile", $"""
            FROM {farm.Base}
            COPY a.txt /a.txt
            RUN echo ran {marker} && date +%s%N > /stamp
            COPY b.txt /b.txt
            RUN date +%s%N > /stamp2
            """),
        ("a.txt", marker),
        ("b.txt", b));

    /// <summary>Whether a step printed <paramref name="line"/> (plain progress: <c>#N SECONDS LINE</c>), i.e. a RUN ran.</summary>
    private static bool Printed(CliProcess.Result build, string line) =>
        Regex.IsMatch(build.Stderr, $@"^#\d+ \d+\.\d{{3}} {Regex.Escape(line)}$", RegexOptions.Multiline);

    /// <summary>The manifest digest the build printed.</summary>
    private static string Digest(CliProcess.Result build) =>
        Regex.Match(build.Stderr, @"writing image (sha256:[0-9a-f]{64})") is { Success: true } m ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException("no image digest in " + build);

    /// <summary>Each layer step in order: CACHED, or RAN (DONE).</summary>
    private static List<string> Steps(string plain)
    {
        var steps = Regex.Matches(plain, @"^#(\d+) \[stage-\d+ \d+/\d+\]", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        steps.AddRange(Regex.Matches(plain, @"^#(\d+) \[builder \d+/\d+\]", RegexOptions.Multiline).Select(m => m.Groups[1].Value));
        return [.. steps.Select(int.Parse).Order().Select(n => Regex.IsMatch(plain, $"^#{n} CACHED$", RegexOptions.Multiline) ? "CACHED" : Regex.IsMatch(plain, $@"^#{n} DONE ", RegexOptions.Multiline) ? "RAN" : "?")];
    }
}
