using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Api;
using Farm.Coordinator.Builds;
using Farm.Coordinator.Hosting;
using Farm.Oci.Net;
using Farm.Worker;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The coordinator's HTTP API in the test process: the embedded farm (silo, in-memory bus, the real worker) with the
/// build service and the API on a free loopback port.
/// </summary>
public sealed class ApiFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public LayerStoreFixture Store { get; } = new();

    public HttpClient Http { get; private set; } = null!;

    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("The fixture is not initialised.");

    public SubmitContext Context { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Store.InitializeAsync();
        var port = FreePorts.Tcp();
        // The coordinator process's own composition (AddFarmCoordinatorApp), with the worker in this process.
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Farm:Coordinator:Transport"] = "InMemory",
            ["Farm:Coordinator:InProcessWorker"] = "true",
            ["Farm:Coordinator:SiloPort"] = FreePorts.Tcp().ToString(CultureInfo.InvariantCulture),
            ["Farm:Coordinator:GatewayPort"] = FreePorts.Tcp().ToString(CultureInfo.InvariantCulture),
            ["Farm:Coordinator:JobTimeout"] = "00:05:00",
            ["Farm:Coordinator:HttpPort"] = port.ToString(CultureInfo.InvariantCulture),
            ["Farm:Worker:Name"] = "embedded",
            ["Farm:Worker:StateDirectory"] = Path.Combine(Store.Root, "w"),
            ["Farm:Worker:Slots"] = "2",
            ["Farm:Builds:CacheStore"] = Store.StoreAddress,
            ["Farm:Builds:StateDirectory"] = Path.Combine(Store.Root, "coordinator"),
        });
        builder.AddFarmCoordinatorApp();
        _app = builder.Build();
        _app.MapFarmCoordinator();
        await _app.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(5) };
        Context = await SubmitContext.CreateAsync(Store.StoreAddress, Store.BaseLayer);
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        Context?.Dispose();
        await Store.DisposeAsync();
    }
}

/// <summary>Builds submitted over HTTP: 202 at once, events streamed until the end, the status with the pushed digest.</summary>
public sealed class ApiBuildTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    [Fact]
    public async Task A_posted_two_stage_build_is_accepted_at_once_streams_its_events_to_the_end_and_reports_the_pushed_digest()
    {
        var tag = fixture.Context.Tag("app:1");

        using var posted = await fixture.Http.PostAsJsonAsync("builds", fixture.Context.SubmitJson(tag));
        Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
        var id = (string)(await posted.Content.ReadFromJsonAsync<JsonObject>())!["buildId"]!;
        Assert.True(Guid.TryParse(id, out _), id);

        var events = (await fixture.Http.GetStringAsync($"builds/{id}/events?follow=true"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonNode.Parse(line)!)
            .ToList();
        Assert.Equal("BuildStarted", (string?)events.First(e => (string?)e["type"] != "BaseImageResolved")["type"]);
        var last = events[^1];
        Assert.True((string?)last["type"] == "BuildFinished", "the stream ended with " + last.ToJsonString());
        Assert.Equal(3, events.Count(e => (string?)e["type"] == "StepFinished"));

        var status = (await fixture.Http.GetFromJsonAsync<JsonObject>($"builds/{id}"))!;
        Assert.Equal("succeeded", (string?)status["status"]);
        var digest = (string?)status["imageDigest"];
        Assert.Equal((string?)last["imageDigest"], digest);
        Assert.Equal([tag], status["pushed"]!.AsArray().Select(t => (string?)t));
        var steps = status["steps"]!.AsArray();
        Assert.Equal(["s0/1", "s1/1", "s1/2"], steps.Select(s => (string?)s!["stepId"]).Order());
        Assert.All(steps, s => Assert.Equal("built", (string?)s!["status"]));
        Assert.All(steps, s => Assert.Equal("embedded", (string?)s!["worker"]));

        Assert.Equal(digest, await SubmitContext.RegistryDigestAsync(tag));

        // The finished build's events without follow are the same list; its logs are plain text.
        var again = (await fixture.Http.GetStringAsync($"builds/{id}/events")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(events.Count, again.Length);
        using var logs = await fixture.Http.GetAsync($"builds/{id}/logs");
        Assert.Equal(HttpStatusCode.OK, logs.StatusCode);
        Assert.Equal("text/plain", logs.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task An_unknown_build_is_404_with_a_farm_code()
    {
        var unknown = Guid.NewGuid();
        foreach (var path in new[] { $"builds/{unknown}", $"builds/{unknown}/events?follow=true", $"builds/{unknown}/logs" })
        {
            using var response = await fixture.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
            Assert.Equal("FARM4210", (string?)body["code"]);
        }
    }

    [Fact]
    public async Task A_body_without_a_dockerfile_is_400_naming_the_field()
    {
        using var response = await fixture.Http.PostAsync("builds", new StringContent("""{"contextDigest":"sha256:00"}""", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Contains("dockerfile", (string?)body["error"], StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("contextDigest", "sha256:not-hex")]
    [InlineData("contextDigest", "sha256:abc123")]
    [InlineData("contextDigest", "md5:d41d8cd98f00b204e9800998ecf8427e")]
    [InlineData("contextIndexDigest", "sha256:not-hex")]
    public async Task A_malformed_digest_is_400_naming_the_field(string field, string value)
    {
        var body = fixture.Context.SubmitJson(fixture.Context.Tag("never:1"));
        body[field] = value;

        using var response = await fixture.Http.PostAsync("builds", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("FARM4211", (string?)answer["code"]);
        Assert.Contains($"\"{field}\" is not a digest ('{value}'", (string?)answer["error"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_submission_without_a_context_index_builds_when_no_step_reads_the_context()
    {
        var tag = fixture.Context.Tag("no-index:1");
        var body = fixture.Context.SubmitJson(tag);
        body["dockerfile"] = "ARG BASE\nFROM ${BASE}\nRUN echo no index needed > /out\n";
        body.Remove("contextIndexDigest");

        var status = await BuildToTheEndAsync(body);
        Assert.True((string?)status["status"] == "succeeded", status.ToJsonString());
        Assert.Equal((string?)status["imageDigest"], await SubmitContext.RegistryDigestAsync(tag));
    }

    [Fact]
    public async Task A_submission_without_a_context_index_that_copies_from_the_context_fails_naming_the_step()
    {
        var body = fixture.Context.SubmitJson(fixture.Context.Tag("no-index-copy:1"));
        body["dockerfile"] = "ARG BASE\nFROM ${BASE}\nRUN true\nCOPY hello.txt /hello.txt\n";
        body.Remove("contextIndexDigest");

        var status = await BuildToTheEndAsync(body);
        Assert.Equal("failed", (string?)status["status"]);
        Assert.Equal("FARM4203", (string?)status["errorCode"]);
        Assert.Contains("Dockerfile:4:1: step s0/", (string?)status["error"], StringComparison.Ordinal);
        Assert.Contains("`COPY hello.txt /hello.txt` reads the build context, but the submission names no context index", (string?)status["error"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_index_that_does_not_describe_its_tar_is_refused_and_poisons_no_cache_key()
    {
        // The attack: the tar holds other bytes than the index claims, so the layer of "evil" would be cached under the
        // key of "good" and served to every later build of "good".
        var marker = Guid.NewGuid().ToString("N");
        var (evilTar, _) = await fixture.Context.UploadAsync(new Dictionary<string, string> { ["hello.txt"] = $"evil {marker}\n" });
        var (goodTar, goodIndex) = await fixture.Context.UploadAsync(new Dictionary<string, string> { ["hello.txt"] = $"good {marker}\n" });
        const string dockerfile = "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n";

        async Task<(JsonObject Status, string Events)> BuildAsync(string tar, string tag)
        {
            var body = fixture.Context.SubmitJson(fixture.Context.Tag(tag));
            body["dockerfile"] = dockerfile;
            body["contextDigest"] = tar;
            body["contextIndexDigest"] = goodIndex;
            using var posted = await fixture.Http.PostAsync("builds", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
            var id = (string)(await posted.Content.ReadFromJsonAsync<JsonObject>())!["buildId"]!;
            var events = await fixture.Http.GetStringAsync($"builds/{id}/events?follow=true");
            return ((await fixture.Http.GetFromJsonAsync<JsonObject>($"builds/{id}"))!, events);
        }

        var (refused, refusedEvents) = await BuildAsync(evilTar, "poison:1");
        Assert.Equal("failed", (string?)refused["status"]);
        Assert.Equal("FARM1212", (string?)refused["errorCode"]);
        Assert.Contains("'hello.txt' is a file of", (string?)refused["error"], StringComparison.Ordinal);
        Assert.DoesNotContain("\"StepStarted\"", refusedEvents, StringComparison.Ordinal);

        var (built, builtEvents) = await BuildAsync(goodTar, "poison:2");
        Assert.True((string?)built["status"] == "succeeded", built.ToJsonString());
        var copy = builtEvents.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Single(e => (string?)e["type"] == "StepFinished");
        Assert.False((bool)copy["outcome"]!["cached"]!, "the honest build's COPY came from a cache the refused build filled");
    }

    [Fact]
    public async Task A_missing_context_index_fails_the_build_with_its_code_in_the_status()
    {
        var submit = new SubmitBuild { Dockerfile = "FROM scratch\n", ContextDigest = "sha256:" + new string('0', 64), ContextIndexDigest = "sha256:" + new string('1', 64) };
        using var posted = await fixture.Http.PostAsJsonAsync("builds", submit, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        var id = (string)(await posted.Content.ReadFromJsonAsync<JsonObject>())!["buildId"]!;

        var events = await fixture.Http.GetStringAsync($"builds/{id}/events?follow=true");

        Assert.Contains("\"BuildFailed\"", events, StringComparison.Ordinal);
        var status = (await fixture.Http.GetFromJsonAsync<JsonObject>($"builds/{id}"))!;
        Assert.Equal("failed", (string?)status["status"]);
        Assert.Equal("FARM4203", (string?)status["errorCode"]);
    }

    /// <summary>Posts <paramref name="body"/>, which must be accepted (202), follows the build's events to its end and returns its status.</summary>
    private async Task<JsonObject> BuildToTheEndAsync(JsonObject body)
    {
        using var posted = await fixture.Http.PostAsync("builds", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
        var id = (string)(await posted.Content.ReadFromJsonAsync<JsonObject>())!["buildId"]!;
        await fixture.Http.GetStringAsync($"builds/{id}/events?follow=true");
        return (await fixture.Http.GetFromJsonAsync<JsonObject>($"builds/{id}"))!;
    }
}
