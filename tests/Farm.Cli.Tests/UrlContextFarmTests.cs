using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A remote farm whose policy on URL contexts allows 127.0.0.1 (<c>Farm:Builds:UrlContexts:AllowedNetworks</c>, where the
/// tests' git daemon and HTTP server listen) and downloads tarballs of at most <see cref="MaxBytes"/>; otherwise as
/// <see cref="RemoteFarmFixture"/>: one coordinator (no Redis), one worker, a RabbitMQ virtual host of its own.
/// </summary>
public sealed class UrlContextFarmFixture : IAsyncLifetime
{
    public const int MaxBytes = 64 * 1024;

    private readonly string _repository = $"t{Guid.NewGuid():N}";
    private CoordinatorProcess? _coordinator;
    private WorkerProcess? _worker;
    private RabbitMqVirtualHost? _vhost;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("farm-urlctx-").FullName;

    public string Base => $"{Repository}/busybox:1";

    public string Repository => $"{TestRegistries.Anonymous}/{_repository}";

    /// <summary>
    /// The CLI's environment; its PATH is an empty directory, so the CLI could run no git (FARM5064 if it tried) and
    /// anything it printed about fetching would be a failure: the farm fetches.
    /// </summary>
    public Dictionary<string, string> Env => new(SetupEnv)
    {
        ["PATH"] = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "empty-path")).FullName,
    };

    private Dictionary<string, string> SetupEnv => FarmCli.ClientEnv(Directory, _coordinator?.Url, _vhost?.AmqpUrl ?? string.Empty);

    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        _vhost = await RabbitMqVirtualHost.CreateAsync("farm-urlctx-");
        _coordinator = CoordinatorProcess.Start(_vhost.AmqpUrl, 0, $"registry://{Repository}/cache", Path.Combine(Directory, "coordinator"), new Dictionary<string, string>
        {
            ["Farm__Builds__UrlContexts__AllowedNetworks__0"] = "127.0.0.1",
            ["Farm__Builds__UrlContexts__MaxBytes"] = MaxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        _worker = WorkerProcess.Start("url-context-worker", Path.Combine(Directory, "w"), _vhost.Name);

        Ok(await FarmCli.RunAsync(SetupEnv, null, "import", BuildFixture.BusyboxRootfs(Directory), Base));
        Ok(await FarmCli.RunAsync(SetupEnv, null, "push", Base));
        await _coordinator.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-build-layer") == 1, TimeSpan.FromSeconds(60), () => "the worker to consume farm-build-layer" + Diagnostics());
        await Wait.UntilAsync(async () => await _vhost.ConsumersAsync("farm-submit-build") == 1, TimeSpan.FromSeconds(60), () => "the coordinator to consume farm-submit-build" + Diagnostics());
    }

    internal Task<CliProcess.Result> Farm(params string[] args) => FarmCli.RunAsync(Env, null, args);

    /// <summary>What the coordinator and the worker printed.</summary>
    public string Output() => (_coordinator?.OutputTail() ?? string.Empty) + (_worker?.OutputTail() ?? string.Empty);

    public string Diagnostics() => Teardown.Diagnostics(("coordinator", _coordinator?.OutputTail()), ("worker", _worker?.OutputTail()));

    public async Task DisposeAsync()
    {
        await Teardown.InOrderAsync(_worker, _coordinator, _vhost);
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}

/// <summary>
/// URL contexts through a remote farm (issue 18): <c>farm submit URL</c> sends the URL, and the coordinator fetches it
/// (git through a git daemon on 127.0.0.1, a tarball from an HTTP server the test runs), within its policy and size bound.
/// </summary>
public sealed class UrlContextFarmTests(UrlContextFarmFixture farm) : IClassFixture<UrlContextFarmFixture>
{
    [Fact]
    public async Task A_git_URL_is_fetched_by_the_farm_and_a_rebuild_of_the_same_ref_comes_from_its_cache()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var repos = Path.Combine(farm.Directory, "repos-" + marker);
        var work = Path.Combine(farm.Directory, "work-" + marker);
        Directory.CreateDirectory(Path.Combine(work, "svc"));
        await Git(work, "init", "-q", "-b", "main");
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "Dockerfile"), $"FROM {farm.Base}\nCOPY version /version\nRUN cat /version\n");
        await File.WriteAllTextAsync(Path.Combine(work, "svc", "version"), $"git-{marker}\n");
        await Git(work, "add", "-A");
        await Git(work, "commit", "-q", "-m", "one");
        var commit = (await Git(work, "rev-parse", "HEAD")).Trim();
        Directory.CreateDirectory(repos);
        await Git(farm.Directory, "clone", "-q", "--bare", work, Path.Combine(repos, "app.git"));
        await using var daemon = await BuildInputsTests.GitDaemon.StartAsync(repos);
        var url = $"git://127.0.0.1:{daemon.Port}/app.git#main:svc";

        // The CLI runs without git on its PATH (UrlContextFarmFixture.Env): it could not have cloned.
        var first = await farm.Farm("submit", "--wait", "--progress", "rawjson", url);
        Assert.True(first.ExitCode == 0, first.ToString() + farm.Diagnostics());
        var fetched = Events(first.Stdout, "ContextFetched").Single();
        Assert.Equal("git", (string?)fetched["kind"]);
        Assert.Equal(commit, (string?)fetched["commit"]);
        Assert.False((bool)fetched["cached"]!);
        Assert.Empty(Events(first.Stdout, "ContextPacked"));
        Assert.Contains(Events(first.Stdout, "StepLog"), e => ((string?)e["line"]?["line"])?.Contains($"git-{marker}", StringComparison.Ordinal) == true);

        // The same ref, not moved: the farm asks the repository which commit it names and takes the context from its cache.
        var second = await farm.Farm("submit", "--wait", "--progress", "rawjson", url);
        Assert.True(second.ExitCode == 0, second.ToString() + farm.Diagnostics());
        var again = Events(second.Stdout, "ContextFetched").Single();
        Assert.True((bool)again["cached"]!, second.Stdout);
        Assert.Equal((string?)fetched["digest"], (string?)again["digest"]);

        // farm build --farm (here FARM_HOST) sends the URL the same way, and -f names a path inside the fetched context.
        var built = await farm.Farm("build", "--progress", "rawjson", "-f", "Dockerfile", url);
        Assert.True(built.ExitCode == 0, built.ToString() + farm.Diagnostics());
        Assert.True((bool)Events(built.Stdout, "ContextFetched").Single()["cached"]!, built.Stdout);
        var noDockerfile = await farm.Farm("build", "-f", "nowhere/Dockerfile", url);
        Assert.Equal(1, noDockerfile.ExitCode);
        Assert.Contains($"FARM1244: the build context git://127.0.0.1:{daemon.Port}/app.git has no Dockerfile at 'nowhere/Dockerfile'", noDockerfile.Stderr, StringComparison.Ordinal);

        var unknown = await farm.Farm("submit", "--wait", $"git://127.0.0.1:{daemon.Port}/app.git#no-such-branch:svc");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("FARM1230: the git context git://127.0.0.1:", unknown.Stderr, StringComparison.Ordinal);
        Assert.Contains("no branch or tag 'no-such-branch'", unknown.Stderr, StringComparison.Ordinal);

        var ssh = await farm.Farm("submit", "--wait", "git@127.0.0.1:app.git");
        Assert.Equal(1, ssh.ExitCode);
        Assert.Contains("FARM1243: the build context git@127.0.0.1:app.git is fetched over ssh", ssh.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tarball_URL_is_fetched_by_the_farm_not_the_client_and_its_password_is_never_shown()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var tar = BuildInputsTests.Compress(BuildInputsTests.Tar(("Dockerfile", $"FROM {farm.Base}\nCOPY msg /msg\nRUN cat /msg\n"), ("msg", $"tarball-{marker}\n")), "gzip");
        await using var server = GatedFiles.Start(new() { ["/ctx.tar.gz"] = tar });

        // The server answers nothing until the gate opens: a client that fetched would still be waiting. farm submit
        // (without --wait) must have published the build and printed its id before anything was served.
        var submitted = await farm.Farm("submit", $"{server.Url}/ctx.tar.gz");
        Assert.True(submitted.ExitCode == 0, submitted.ToString());
        var id = submitted.Stdout.Trim();
        Assert.True(Guid.TryParse(id, out _), submitted.ToString());
        server.Open();
        var status = await EndAsync(id);
        Assert.True((string?)JsonNode.Parse(status)!["status"] == "succeeded", status + farm.Diagnostics());
        var logs = await farm.Farm("logs", id);
        Assert.Contains($"tarball-{marker}", logs.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, server.Requests("/ctx.tar.gz"));

        // A password in the URL: used for the fetch, never shown in events, the CLI's output, the status or the farm's logs.
        var secret = "pw-" + Guid.NewGuid().ToString("N");
        var withPassword = await farm.Farm("submit", "--wait", "--progress", "rawjson", $"http://farm:{secret}@127.0.0.1:{server.Port}/ctx.tar.gz");
        Assert.True(withPassword.ExitCode == 0, withPassword.ToString() + farm.Diagnostics());
        var fetched = Events(withPassword.Stdout, "ContextFetched").Single();
        Assert.Equal($"http://***@127.0.0.1:{server.Port}/ctx.tar.gz", (string?)fetched["url"]);
        Assert.Equal($"Basic {Convert.ToBase64String(Encoding.UTF8.GetBytes($"farm:{secret}"))}", server.LastAuthorization);
        var buildId = (string?)Events(withPassword.Stdout, "BuildFinished").Single()["buildId"];
        var shown = await farm.Farm("status", buildId!);
        foreach (var text in new[] { withPassword.Stdout, withPassword.Stderr, shown.Stdout, shown.Stderr, farm.Output() })
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_farm_refuses_its_own_services_and_too_large_or_non_tar_answers_and_says_why()
    {
        var random = new byte[UrlContextFarmFixture.MaxBytes * 2];
        new Random(18).NextBytes(random);
        random[0] = 0x00;
        // A megabyte of zeros gzips to about a kilobyte: small to download, too large to unpack.
        var bomb = BuildInputsTests.Compress(BuildInputsTests.Tar(("Dockerfile", "FROM scratch\n"), ("zeros", new string('\0', 1024 * 1024))), "gzip");
        Assert.True(bomb.Length < UrlContextFarmFixture.MaxBytes, $"the gzip is {bomb.Length} bytes");
        await using var server = GatedFiles.Start(new() { ["/big.tar"] = random, ["/junk.tar"] = random[..1024], ["/bomb.tar.gz"] = bomb });
        server.Open();

        // The registry of the farm's cache store is on an allowed address (127.0.0.1), and refused by its port.
        var registry = await farm.Farm("submit", "--wait", $"http://{TestRegistries.Anonymous}/v2/ctx.tar");
        Assert.Equal(1, registry.ExitCode);
        Assert.Contains($"FARM4360: the farm refuses to fetch the build context http://{TestRegistries.Anonymous}/v2/ctx.tar", registry.Stderr, StringComparison.Ordinal);
        Assert.Contains("one of the farm's own services", registry.Stderr, StringComparison.Ordinal);

        var big = await farm.Farm("submit", "--wait", $"{server.Url}/big.tar");
        Assert.Equal(1, big.ExitCode);
        Assert.Contains($"FARM1242: the build context {server.Url}/big.tar is larger than the {UrlContextFarmFixture.MaxBytes} bytes", big.Stderr, StringComparison.Ordinal);

        var unpacked = await farm.Farm("submit", "--wait", $"{server.Url}/bomb.tar.gz");
        Assert.Equal(1, unpacked.ExitCode);
        Assert.Contains($"FARM1242: the build context {server.Url}/bomb.tar.gz is larger than the {UrlContextFarmFixture.MaxBytes} bytes this farm unpacks", unpacked.Stderr, StringComparison.Ordinal);

        var junk = await farm.Farm("submit", "--wait", $"{server.Url}/junk.tar");
        Assert.Equal(1, junk.ExitCode);
        Assert.Contains($"FARM1241: the build context {server.Url}/junk.tar is binary, and not a tar archive", junk.Stderr, StringComparison.Ordinal);

        var missing = await farm.Farm("submit", "--wait", $"{server.Url}/missing.tar");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains($"FARM1240: the farm cannot fetch the build context {server.Url}/missing.tar: the server answered 404", missing.Stderr, StringComparison.Ordinal);
    }

    private async Task<string> EndAsync(string id)
    {
        var status = string.Empty;
        await Wait.UntilAsync(
            async () =>
            {
                var result = await farm.Farm("status", id);
                status = result.Stdout + result.Stderr;
                return result.ExitCode == 0 && (string?)JsonNode.Parse(result.Stdout)!["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromSeconds(180),
            () => $"build {id} to end; last status: {status}{farm.Diagnostics()}");
        return status;
    }

    private static List<JsonObject> Events(string rawjson, string type) =>
        [.. rawjson.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l) as JsonObject).OfType<JsonObject>().Where(e => (string?)e["type"] == type)];

    private static Task<string> Git(string directory, params string[] args) =>
        Tool.RunAsync("git", ["-C", directory, "-c", "user.name=farm", "-c", "user.email=farm@example.invalid", .. args]);

    /// <summary>An HTTP server on 127.0.0.1 that holds every request until <see cref="Open"/>, then answers GET with a path's bytes (404 otherwise), counting requests.</summary>
    private sealed class GatedFiles(HttpListener listener, Task serving, int port, TaskCompletionSource gate, ConcurrentDictionary<string, int> requests) : IAsyncDisposable
    {
        public int Port { get; } = port;

        public string Url => $"http://127.0.0.1:{Port}";

        public string? LastAuthorization { get; private set; }

        public void Open() => gate.TrySetResult();

        public int Requests(string path) => requests.GetValueOrDefault(path);

        public static GatedFiles Start(Dictionary<string, byte[]> files)
        {
            int port;
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                port = ((IPEndPoint)probe.LocalEndpoint).Port;
            }

            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            listener.Start();
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var requests = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
            GatedFiles? self = null;
            var serving = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await listener.GetContextAsync();
                    }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                    {
                        return;
                    }

                    _ = Task.Run(async () =>
                    {
                        var path = context.Request.Url!.AbsolutePath;
                        requests.AddOrUpdate(path, 1, (_, n) => n + 1);
                        self!.LastAuthorization = context.Request.Headers["Authorization"] ?? self.LastAuthorization;
                        await gate.Task;
                        try
                        {
                            if (files.TryGetValue(path, out var body))
                            {
                                context.Response.ContentLength64 = body.Length;
                                await context.Response.OutputStream.WriteAsync(body);
                            }
                            else
                            {
                                context.Response.StatusCode = 404;
                            }

                            context.Response.Close();
                        }
                        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException)
                        {
                            // The client went away (a download cut short at the size bound).
                        }
                    });
                }
            });
            self = new GatedFiles(listener, serving, port, gate, requests);
            return self;
        }

        public async ValueTask DisposeAsync()
        {
            gate.TrySetResult();
            // Close alone: Stop then Close removes the listener twice, and the second removal binds the port again
            // (HttpListenerException "Address already in use" when another socket holds it by then).
            listener.Close();
            await serving;
        }
    }
}
