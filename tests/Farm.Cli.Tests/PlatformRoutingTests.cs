using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A farm of processes on RabbitMQ with two workers of one slot each: <see cref="AmdOnly"/>, told it runs only
/// linux/amd64 (<c>Farm:Worker:Platforms</c>), and <see cref="Emulating"/>, which runs linux/arm64 too through
/// qemu-user-static (infra/install.sh); a two-platform busybox base in the anonymous registry. Coordinator and
/// workers export their traces to an <see cref="OtlpSink"/>.
/// </summary>
public sealed class PlatformFarmFixture : IAsyncLifetime
{
    public const string AmdOnly = "amd64-only";

    public const string Emulating = "emulating";

    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _amdOnly;
    private WorkerProcess? _emulating;
    private RabbitMqVirtualHost? _vhost;
    private OtlpSink? _otlp;

    internal OtlpSink Otlp => _otlp!;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-platforms-").FullName;

    public string Base { get; private set; } = string.Empty;

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    public RabbitMqVirtualHost VirtualHost => _vhost!;

    public CoordinatorProcess Coordinator => _coordinator!;

    public Dictionary<string, string> Env => FarmCli.ClientEnv(Directory, _coordinator?.Url, _vhost?.AmqpUrl ?? string.Empty);

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-platforms-");
        _otlp = new OtlpSink();
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, "coordinator"), _otlp.Environment);
        _amdOnly = WorkerProcess.Start(AmdOnly, Path.Combine(Directory, "w1"), _vhost.Name, new Dictionary<string, string>(_otlp.Environment) { ["Farm__Worker__Platforms__0"] = "linux/amd64" });
        _emulating = WorkerProcess.Start(Emulating, Path.Combine(Directory, "w2"), _vhost.Name, _otlp.Environment);

        Base = await MultiPlatformBase.PushAsync(Farm, Directory);
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 2, TimeSpan.FromSeconds(60), () => "both workers to consume farm-build-layer" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer-linux-arm64") == 1, TimeSpan.FromSeconds(60), () => "the emulating worker to consume farm-build-layer-linux-arm64" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-submit-build") == 1, TimeSpan.FromSeconds(60), () => "the coordinator to consume farm-submit-build" + Diagnostics());
    }

    internal Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    public string Diagnostics() => Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), (AmdOnly, _amdOnly?.OutputTail()), (Emulating, _emulating?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_amdOnly, _emulating, _coordinator, _vhost);
        _otlp?.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>The scheduler sends each step to a worker that runs its platform (docs/architecture.md, "Platforms").</summary>
public sealed class PlatformRoutingTests(PlatformFarmFixture farm) : IClassFixture<PlatformFarmFixture>
{
    [Fact]
    public async Task A_worker_without_arm64_never_gets_an_arm64_step_and_the_emulating_one_says_it_emulated()
    {
        var context = System.IO.Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        // Two RUN steps per platform, so that with one slot each both workers are asked for work while arm64's run.
        var marker = Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {farm.Base}\nRUN echo {marker} > /a\nRUN uname -m > /arch\n");
        var remote = $"{farm.Repository}/routed:1";

        var build = await farm.Farm("build", "--progress", "rawjson", "--platform", "linux/amd64,linux/arm64", "--push", "-t", remote, context);

        Assert.True(build.ExitCode == 0, $"farm build exited {build.ExitCode}: {build.Stderr}{farm.Diagnostics()}");
        var outcomes = build.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonNode.Parse(l)!)
            .Where(e => (string?)e["type"] == "StepFinished")
            .Select(e => e["outcome"]!)
            .ToList();
        var arm = outcomes.Where(o => (string?)o["platform"] == "linux/arm64").ToList();
        var amd = outcomes.Where(o => o["platform"] is null).ToList();
        Assert.Equal(2, arm.Count);
        Assert.Equal(2, amd.Count);
        Assert.All(arm, o => Assert.False((bool)o["cached"]!));
        Assert.All(arm, o => Assert.Equal(PlatformFarmFixture.Emulating, (string?)o["worker"]));
        Assert.All(arm, o => Assert.True((bool)o["emulated"]!));
        Assert.All(amd, o => Assert.False((bool?)o["emulated"] ?? false));
        Assert.All(outcomes, o => Assert.StartsWith((string?)o["platform"] ?? "linux/amd64", (string)o["stepId"]!, StringComparison.Ordinal));

        // The coordinator lists what each worker runs, and which it emulates.
        using var http = new HttpClient();
        var workers = JsonNode.Parse(await http.GetStringAsync(new Uri(farm.Coordinator.Url + "/api/workers")))!.AsArray();
        var amdOnly = workers.Single(w => (string?)w!["name"] == PlatformFarmFixture.AmdOnly)!;
        var emulating = workers.Single(w => (string?)w!["name"] == PlatformFarmFixture.Emulating)!;
        Assert.Equal("[\"linux/amd64\"]", amdOnly["platforms"]!.ToJsonString());
        Assert.Equal("[\"linux/amd64\",\"linux/arm64\"]", emulating["platforms"]!.ToJsonString());
        Assert.Equal("[\"linux/arm64\"]", emulating["emulatedPlatforms"]!.ToJsonString());

        // The traces say each step's platform and that the arm64 ones ran emulated (protobuf keeps strings as their
        // bytes: an attribute is its key, then its value; a true bool value is 0x12 0x02 0x10 0x01).
        await Wait.UntilAsync(
            () => Task.FromResult(farm.Otlp.Bodies("/v1/traces").Any(b => Follows(b, "farm.platform", "linux/arm64")) && farm.Otlp.Bodies("/v1/traces").Any(b => Follows(b, "farm.emulated", [0x12, 0x02, 0x10, 0x01]))),
            TimeSpan.FromSeconds(60),
            () => "spans with farm.platform=linux/arm64 and farm.emulated=true" + farm.Diagnostics());
    }

    /// <summary>Whether <paramref name="key"/>'s bytes occur in <paramref name="body"/> followed within a few bytes by <paramref name="value"/>'s.</summary>
    private static bool Follows(byte[] body, string key, string value) => Follows(body, key, System.Text.Encoding.UTF8.GetBytes(value));

    private static bool Follows(byte[] body, string key, byte[] value)
    {
        var keyBytes = System.Text.Encoding.UTF8.GetBytes(key);
        var span = body.AsSpan();
        for (var at = span.IndexOf(keyBytes); at >= 0; )
        {
            var after = span[(at + keyBytes.Length)..];
            if (after[..Math.Min(after.Length, value.Length + 4)].IndexOf(value) >= 0)
            {
                return true;
            }

            var next = after.IndexOf(keyBytes);
            at = next < 0 ? -1 : at + keyBytes.Length + next;
        }

        return false;
    }

    [Fact]
    public async Task A_step_for_a_platform_no_worker_runs_fails_at_once_and_says_so()
    {
        using var http = new HttpClient();
        await Wait.UntilAsync(
            async () => (await CoordinatorWorkers.NamesAsync(http, farm.Coordinator.Url)).Count == 2,
            TimeSpan.FromSeconds(60),
            () => "the coordinator to hear from both workers" + farm.Diagnostics());
        var context = System.IO.Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), "FROM scratch\nCOPY a /a\n");
        await File.WriteAllTextAsync(Path.Combine(context, "a"), Guid.NewGuid().ToString("N"));

        var build = await farm.Farm("build", "--progress", "plain", "--platform", "linux/s390x", context);

        Assert.NotEqual(0, build.ExitCode);
        Assert.Contains("FARM4321", build.Stderr, StringComparison.Ordinal);
        Assert.Contains("linux/s390x, which none of the farm's workers runs (they run linux/amd64, linux/arm64)", build.Stderr, StringComparison.Ordinal);
    }
}
