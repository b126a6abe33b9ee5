using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Net;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// <c>farm build --secret</c> on a shared farm (<see cref="SharedFarmSecretsFixture"/>: a coordinator over HTTPS and two
/// worker processes): the worker running a step that mounts a secret fetches it from the coordinator with its job's
/// credential; the value reaches the step and nothing else (image, events, logs, traces, Redis, RabbitMQ); a job's
/// credential opens its own build's secrets only, and nothing once its job has ended.
/// </summary>
public sealed class SharedFarmSecretsTests(SharedFarmSecretsFixture farm) : IClassFixture<SharedFarmSecretsFixture>
{
    private static readonly TimeSpan StepWait = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_secret_reaches_a_step_on_a_cluster_worker_and_no_image_event_log_trace_Redis_key_or_queued_message()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var fileSecret = "file-secret-" + Guid.NewGuid().ToString("N");
        var envSecret = "env-secret-" + Guid.NewGuid().ToString("N");
        var context = Context("leak-" + marker, $"""
            FROM {farm.Base}
            RUN --mount=type=secret,id=token,required=true --mount=type=secret,id=api,env=API_KEY \
                echo step-{marker} && sha256sum /run/secrets/token | cut -c1-64 > /token.sha && printf %s "$API_KEY" | sha256sum | cut -c1-64 > /api.sha
            """);
        var secretFile = Path.Combine(farm.Directory, "token-" + marker);
        await File.WriteAllTextAsync(secretFile, fileSecret);
        var image = $"{farm.Repository}/secret:{marker}";
        var env = farm.Env(farm.AcmeToken);
        env["FARM_TEST_API_KEY"] = envSecret;

        var build = await CliProcess.RunAsync(env, TimeSpan.FromMinutes(5), null,
            ["build", "--progress", "rawjson", "--secret", $"id=token,src={secretFile}", "--secret", "id=api,env=FARM_TEST_API_KEY", "--push", "-t", image, context]);

        Assert.True(build.ExitCode == 0, build + farm.Diagnostics());
        var buildId = new FarmBuild("leak", image, marker, build).Id;
        using var registry = new RegistryClient(TestRegistries.Anonymous);
        var pushed = await LeakSearch.ImageTextAsync(registry, await registry.PullManifestAsync(ImageReference.Parse(image), CancellationToken.None));
        // The step, on one of the workers, read both values byte for byte.
        Assert.Contains(Sha256(fileSecret), pushed, StringComparison.Ordinal);
        Assert.Contains(Sha256(envSecret), pushed, StringComparison.Ordinal);
        // A worker process ran it, not the coordinator: the step's event names it.
        Assert.Matches("\"worker\":\"secrets-worker-[12]\"", build.Stdout);

        var places = new Dictionary<string, string>
        {
            ["the pushed image (manifest, config with history, layers)"] = pushed,
            ["the CLI's events and output"] = build.Stdout + build.Stderr,
            ["the coordinator's output (Debug)"] = farm.Coordinator.Output(),
            ["the workers' output (Debug)"] = string.Join("\n", farm.Workers.Select(w => w.Output())),
            ["the workers' state directories"] = string.Join("\n", farm.Workers.Select(w => LeakSearch.FilesText(w.StateDirectory))),
            ["Redis, every key and value"] = await LeakSearch.DumpRedisAsync(farm.Redis.Configuration),
        };
        using (var http = farm.Http(farm.AdminToken))
        {
            places["the build's events, logs and status from the API"] =
                await http.GetStringAsync($"builds/{buildId}/events") + await http.GetStringAsync($"builds/{buildId}/logs") + await http.GetStringAsync($"builds/{buildId}");
        }

        // Every message RabbitMQ holds in the farm's virtual host, left where it is; the test's copy of the jobs included.
        var queued = new StringBuilder();
        foreach (var queue in await farm.QueuesAsync())
        {
            queued.Append("queue ").AppendLine(queue).AppendJoin('\n', await farm.MessagesAsync(queue, requeue: true)).AppendLine();
        }

        places["RabbitMQ, every queued message"] = queued.ToString();
        await Wait.UntilAsync(() => LeakSearch.Text(farm.Otlp.Bodies("/v1/traces")).Contains(buildId, StringComparison.Ordinal) && LeakSearch.Text(farm.Otlp.Bodies("/v1/traces")).Contains("RUN --mount=type=secret", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), () => "the build's spans to be exported to the OTLP sink");
        places["exported traces, logs and metrics"] = LeakSearch.Text(farm.Otlp.Bodies());

        // Not vacuous: each place holds the build.
        Assert.Contains("token.sha", pushed, StringComparison.Ordinal);
        Assert.Contains("started on secrets-worker-", places["the workers' output (Debug)"], StringComparison.Ordinal);
        foreach (var place in new[] { "the CLI's events and output", "the coordinator's output (Debug)", "Redis, every key and value", "the build's events, logs and status from the API", "RabbitMQ, every queued message", "exported traces, logs and metrics" })
        {
            Assert.True(places[place].Contains(buildId, StringComparison.Ordinal), $"{place} should name build {buildId}: it is searched for the secrets");
        }

        var found = (from place in places
                     from secret in new[] { fileSecret, envSecret }
                     from form in LeakSearch.Forms(secret)
                     where place.Value.Contains(form, StringComparison.Ordinal)
                     select $"{place.Key} holds a secret ({secret[..8]}...)").ToList();
        Assert.True(found.Count == 0, string.Join(Environment.NewLine, found));
    }

    [Fact]
    public async Task A_job_credential_opens_its_own_builds_secrets_only_and_only_while_its_job_runs()
    {
        var marker = Guid.NewGuid().ToString("N")[..12];
        var acmeSecret = "acme-secret-" + Guid.NewGuid().ToString("N");
        var globexSecret = "globex-secret-" + Guid.NewGuid().ToString("N");
        var (gate1, gate2) = (FreePorts.Tcp(), FreePorts.Tcp());
        // acme: a step mounting its secret that waits for gate 1, then a step without secrets that waits for gate 2.
        var acmeContext = Context("acme-" + marker, $"""
            FROM {farm.Base}
            RUN --network=host --mount=type=secret,id=token,required=true echo acme-{marker}; {Gate(gate1)}
            RUN --network=host echo acme-after-{marker}; {Gate(gate2)}
            """);
        var globexContext = Context("globex-" + marker, $"""
            FROM {farm.Base}
            RUN --network=host --mount=type=secret,id=gtoken,required=true echo globex-{marker}; {Gate(gate1)}
            """);
        var acmeFile = Path.Combine(farm.Directory, "acme-" + marker);
        var globexFile = Path.Combine(farm.Directory, "globex-" + marker);
        await File.WriteAllTextAsync(acmeFile, acmeSecret);
        await File.WriteAllTextAsync(globexFile, globexSecret);

        var acmeBuild = CliProcess.RunAsync(farm.Env(farm.AcmeToken), TimeSpan.FromMinutes(8), null,
            ["build", "--progress", "rawjson", "--allow", "network.host", "--secret", $"id=token,src={acmeFile}", acmeContext]);
        var globexBuild = CliProcess.RunAsync(farm.Env(farm.GlobexToken), TimeSpan.FromMinutes(8), null,
            ["build", "--progress", "rawjson", "--allow", "network.host", "--secret", $"id=gtoken,src={globexFile}", globexContext]);

        // Both secret steps run, one on each worker: their workers fetched the secrets with their jobs' credentials.
        JsonObject acmeJob = null!, globexJob = null!;
        await Wait.UntilAsync(async () =>
        {
            var jobs = await farm.JobsAsync();
            acmeJob = jobs.FirstOrDefault(j => Display(j).Contains($"acme-{marker}", StringComparison.Ordinal))!;
            globexJob = jobs.FirstOrDefault(j => Display(j).Contains($"globex-{marker}", StringComparison.Ordinal))!;
            return acmeJob is not null && globexJob is not null && await RunningStepsAsync() == 2;
        }, StepWait, () => "both secret steps to run on the workers" + farm.Diagnostics());
        var acme = Grant(acmeJob);
        var globex = Grant(globexJob);
        Assert.NotEqual(acme.Credential, globex.Credential);

        // The job's own credential opens its build's secret (as its worker did), and that one only.
        var (status, body) = await FetchAsync(acme.Url, JobSecretsGrant.Scheme, acme.Credential);
        Assert.Equal(HttpStatusCode.OK, status);
        var values = BuildSecretsHeader.TryDecode(body, out _);
        Assert.NotNull(values);
        Assert.Equal(["token"], values.Secrets.Keys);
        Assert.Equal(acmeSecret, Encoding.UTF8.GetString(values.Secrets["token"]));

        // Another tenant's job credential, live at this moment, does not open acme's build; nor the other way round; nor
        // a tenant's farm token, nor nothing at all.
        await AssertRefusedAsync(acme.Url, JobSecretsGrant.Scheme, globex.Credential, acmeSecret);
        await AssertRefusedAsync(globex.Url, JobSecretsGrant.Scheme, acme.Credential, globexSecret);
        await AssertRefusedAsync(acme.Url, "Bearer", farm.AcmeToken, acmeSecret);
        await AssertRefusedAsync(acme.Url, JobSecretsGrant.Scheme, string.Empty, acmeSecret);

        // Gate 1 opens: the secret steps end; acme's build goes on with a step that mounts nothing.
        JsonObject afterJob = null!;
        await LoopbackGate.AnsweringAsync(gate1, () => Wait.UntilAsync(async () =>
        {
            afterJob = (await farm.JobsAsync()).FirstOrDefault(j => Display(j).Contains($"acme-after-{marker}", StringComparison.Ordinal))!;
            return afterJob is not null && globexBuild.IsCompleted && await RunningStepsAsync() == 1;
        }, StepWait, () => "acme's second step to run and globex's build to end" + farm.Diagnostics()));
        Assert.Null(afterJob["secrets"]);
        Assert.False(acmeBuild.IsCompleted, "acme's build ended before its gated step");

        // The first step's job has ended: its credential is refused though acme's build still runs and holds the secret.
        await AssertRefusedAsync(acme.Url, JobSecretsGrant.Scheme, acme.Credential, acmeSecret);

        await LoopbackGate.AnsweringAsync(gate2, () => Wait.UntilAsync(() => acmeBuild.IsCompleted, StepWait, () => "acme's build to end" + farm.Diagnostics()));
        Assert.True((await acmeBuild).ExitCode == 0, (await acmeBuild) + farm.Diagnostics());
        Assert.True((await globexBuild).ExitCode == 0, (await globexBuild) + farm.Diagnostics());
        await AssertRefusedAsync(acme.Url, JobSecretsGrant.Scheme, acme.Credential, acmeSecret);
        await AssertRefusedAsync(globex.Url, JobSecretsGrant.Scheme, globex.Credential, globexSecret);
    }

    [Fact]
    public async Task An_ssh_agent_is_still_refused_by_a_shared_farm_with_what_to_do()
    {
        var context = Context("ssh-" + Guid.NewGuid().ToString("N")[..8], $"FROM {farm.Base}\nRUN --mount=type=ssh true\n");

        var refused = await CliProcess.RunAsync(farm.Env(farm.AcmeToken), TimeSpan.FromMinutes(2), null, ["build", "--progress", "plain", "--ssh", "default=" + farm.Directory, context]);

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("farm: FARM5091: --ssh forwards an SSH agent of this machine", refused.Stderr, StringComparison.Ordinal);
    }

    private static string Gate(int port) => $"until wget -q -O /dev/null http://127.0.0.1:{port}/; do sleep 0.2; done";

    private static string Display(JsonObject job) => (string?)job["step"]?["display"] ?? string.Empty;

    private static JobSecretsGrant Grant(JsonObject job) => new()
    {
        Url = (string?)job["secrets"]?["url"] ?? throw new InvalidOperationException($"job {job["jobId"]} carries no secrets grant: {job}"),
        Credential = (string?)job["secrets"]?["credential"] ?? string.Empty,
    };

    private async Task<int> RunningStepsAsync()
    {
        var count = 0;
        foreach (var worker in farm.Workers)
        {
            count += (await worker.ContainersAsync()).Count;
        }

        return count;
    }

    private async Task<(HttpStatusCode Status, string Body)> FetchAsync(string url, string scheme, string credential)
    {
        using var http = farm.Http(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (credential.Length > 0)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue(scheme, credential);
        }

        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private async Task AssertRefusedAsync(string url, string scheme, string credential, string secret)
    {
        var (status, body) = await FetchAsync(url, scheme, credential);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("FARM4340", body, StringComparison.Ordinal);
        Assert.All(LeakSearch.Forms(secret), form => Assert.DoesNotContain(form, body, StringComparison.Ordinal));
    }

    private string Context(string name, string dockerfile)
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + name)).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), dockerfile);
        return dir;
    }

    private static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
