using System.Net;
using System.Security.Cryptography;
using System.Text;
using Farm.Coordinator.Hosting;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>
/// A coordinator process's probes as a kubelet meets them, with tokens on (a kubelet has none): <c>/livez</c>,
/// <c>/readyz</c> and <c>/healthz</c> answer anonymously; when Redis goes away <c>/readyz</c> (and <c>/healthz</c>)
/// turn 503 while <c>/livez</c> stays 200, so the coordinator is taken out of the Service, not restarted. Its Redis is
/// a redis-server of the test's own; RabbitMQ must run (infra/up.sh).
/// </summary>
public sealed class CoordinatorProbeTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("farm-probes-").FullName;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Probes_answer_without_a_token_and_only_readiness_fails_while_redis_is_down()
    {
        await using var vhost = await RabbitMqVirtualHost.CreateAsync("farm-test-probes-");
        await using var redis = await RedisServer.StartAsync();
        var cluster = "farm-test-" + Guid.NewGuid().ToString("N")[..10];
        var tokenHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("farm_" + Guid.NewGuid().ToString("N"))));
        await using var coordinator = CoordinatorProcess.Start(vhost.AmqpUrl, 0, "registry://127.0.0.1:5100/farm/probes", _state, new Dictionary<string, string>
        {
            ["Farm__Coordinator__Redis"] = redis.Configuration,
            ["Farm__Coordinator__ClusterId"] = cluster,
            ["Farm__Coordinator__ServiceId"] = cluster,
            ["Farm__Coordinator__Auth__Tokens__0"] = $"acme sha256:{tokenHash} build",
            // Every failing probe would log an error: the tail of the output is for what Farm did.
            ["Logging__LogLevel__Microsoft.Extensions.Diagnostics.HealthChecks"] = "None",
        });
        using var http = new HttpClient { BaseAddress = new Uri(coordinator.Url), Timeout = TimeSpan.FromSeconds(10) };

        (HttpStatusCode Status, string Body) ready = default;
        await Wait.UntilAsync(async () => (ready = await ProbeAsync(http, CoordinatorProbes.ReadinessPath)).Status == HttpStatusCode.OK, Bound,
            () => $"{CoordinatorProbes.ReadinessPath} to answer 200; last {ready.Status} {ready.Body}{Environment.NewLine}{coordinator.OutputTail()}");
        Assert.Equal((HttpStatusCode.OK, "Healthy"), await ProbeAsync(http, CoordinatorProbes.LivenessPath));
        Assert.Equal((HttpStatusCode.OK, "Healthy"), await ProbeAsync(http, CoordinatorProbes.HealthPath));
        // The API itself still wants a token: the probes are the exception, not auth switched off.
        Assert.Equal(HttpStatusCode.Unauthorized, (await ProbeAsync(http, $"/builds/{Guid.NewGuid()}/events")).Status);

        await redis.StopAsync();
        await Wait.UntilAsync(async () => (ready = await ProbeAsync(http, CoordinatorProbes.ReadinessPath)).Status == HttpStatusCode.ServiceUnavailable, Bound,
            () => $"{CoordinatorProbes.ReadinessPath} to answer 503 while Redis is down; last {ready.Status} {ready.Body}{Environment.NewLine}{coordinator.OutputTail()}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await ProbeAsync(http, CoordinatorProbes.HealthPath)).Status);
        Assert.Equal((HttpStatusCode.OK, "Healthy"), await ProbeAsync(http, CoordinatorProbes.LivenessPath));
        Assert.False(coordinator.HasExited);
    }

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static async Task<(HttpStatusCode Status, string Body)> ProbeAsync(HttpClient http, string path)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(path, UriKind.Relative));
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (0, e.Message);
        }
    }
}
