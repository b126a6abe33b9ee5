using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// A farm shared by tenants (<see cref="SharedFarmFixture"/>): HTTPS with the farm's CA, bearer tokens per tenant,
/// queued submissions from RabbitMQ users of a tenant. A tenant sees, follows and cancels only its own builds;
/// another tenant's build answers exactly as an unknown id.
/// </summary>
public sealed class SharedFarmTests(SharedFarmFixture farm) : IClassFixture<SharedFarmFixture>
{
    private string Context(string marker, string run = "true")
    {
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            COPY msg.txt /msg.txt
            RUN echo "tenant-output {marker}" && {run}
            """);
        File.WriteAllText(Path.Combine(dir, "msg.txt"), $"secret of acme {marker}\n");
        return dir;
    }

    [Fact]
    public async Task A_tenant_builds_over_TLS_with_its_token_and_another_tenant_learns_nothing_of_the_build()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/acme-app:{marker}";

        var built = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "rawjson", "--push", "-t", image, Context(marker));

        Assert.True(built.ExitCode == 0, built + farm.Diagnostics());
        Assert.StartsWith("https://", farm.Coordinator.Url, StringComparison.Ordinal);
        var id = built.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Select(e => (string?)e["buildId"]).First(b => b is not null)!;
        var status = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "status", id);
        Assert.True(status.ExitCode == 0 && status.Stdout.Contains("\"succeeded\"", StringComparison.Ordinal), status.ToString());
        var logs = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "logs", id);
        Assert.Contains($"tenant-output {marker}", logs.Stdout, StringComparison.Ordinal);

        // Globex: the CLI says there is no such build, and every route answers as for an id nobody used.
        foreach (var command in new[] { "status", "logs" })
        {
            var refused = await FarmCli.RunAsync(farm.Env(farm.GlobexToken), null, command, id);
            Assert.True(refused.ExitCode != 0 && refused.Stderr.Contains("FARM5014", StringComparison.Ordinal), refused.ToString());
            Assert.DoesNotContain(marker, refused.Stdout + refused.Stderr, StringComparison.Ordinal);
        }

        using var globex = farm.Http(farm.GlobexToken);
        var unknown = Guid.NewGuid().ToString();
        foreach (var route in new[] { "builds/{0}", "builds/{0}/events", "builds/{0}/events?follow=true", "builds/{0}/logs", "api/builds/{0}", "api/builds/{0}/logs" })
        {
            var (code, body) = await GetAsync(globex, string.Format(System.Globalization.CultureInfo.InvariantCulture, route, id));
            var (unknownCode, unknownBody) = await GetAsync(globex, string.Format(System.Globalization.CultureInfo.InvariantCulture, route, unknown));
            Assert.Equal(HttpStatusCode.NotFound, code);
            Assert.Equal(unknownCode, code);
            Assert.Equal(unknownBody.Replace(unknown, "ID", StringComparison.Ordinal), body.Replace(id, "ID", StringComparison.Ordinal));
            Assert.DoesNotContain(marker, body, StringComparison.Ordinal);
        }

        using var cancel = await globex.PostAsync($"builds/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.NotFound, cancel.StatusCode);
        var (_, globexList) = await GetAsync(globex, "api/builds");
        Assert.DoesNotContain(id, globexList, StringComparison.Ordinal);
        using var acme = farm.Http(farm.AcmeToken);
        var (_, acmeList) = await GetAsync(acme, "api/builds");
        Assert.Contains(id, acmeList, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_without_a_token_or_with_an_unknown_one_get_401_and_no_data()
    {
        using var anonymous = farm.Http(null);
        using var forged = farm.Http("farm_" + Convert.ToBase64String(Encoding.UTF8.GetBytes(Guid.NewGuid().ToString("N"))));
        var id = Guid.NewGuid();
        foreach (var client in new[] { anonymous, forged })
        {
            foreach (var route in new[] { $"builds/{id}", $"builds/{id}/events", "api/builds", $"api/builds/{id}", "api/workers", "api/stats", "metrics", "store" })
            {
                using var response = await client.GetAsync(route);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{route}: {(int)response.StatusCode} {body}");
                Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
                Assert.Equal("FARM4230", (string?)JsonNode.Parse(body)!["code"]);
            }

            using var submit = await client.PostAsync("builds", new StringContent("""{"dockerfile":"FROM scratch","contextDigest":"sha256:00","tenant":"acme"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Unauthorized, submit.StatusCode);
        }

        // What holds no data answers anyone: health, and the dashboard's page (its JSON needs a token).
        using (var health = await anonymous.GetAsync("healthz"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        using (var page = await anonymous.GetAsync(string.Empty))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        }

        // A read-only token reads the metrics and the dashboard's JSON but submits nothing.
        using var reader = farm.Http(farm.AcmeReadToken);
        using (var metrics = await reader.GetAsync("metrics"))
        {
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        }

        using var readSubmit = await reader.PostAsync("builds", new StringContent("""{"dockerfile":"FROM scratch","contextDigest":"sha256:00"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, readSubmit.StatusCode);
        Assert.Equal("FARM4231", (string?)JsonNode.Parse(await readSubmit.Content.ReadAsStringAsync())!["code"]);

        // The CLI: no token is FARM5030; a coordinator whose CA it was not given is not trusted.
        var noToken = await FarmCli.RunAsync(farm.Env(null), null, "status", id.ToString());
        Assert.True(noToken.ExitCode != 0 && noToken.Stderr.Contains("FARM5030", StringComparison.Ordinal), noToken.ToString());
        var untrusting = farm.Env(farm.AcmeToken);
        untrusting.Remove("FARM_CA");
        var untrusted = await FarmCli.RunAsync(untrusting, null, "status", id.ToString());
        Assert.True(untrusted.ExitCode != 0 && !untrusted.Stderr.Contains("FARM5014", StringComparison.Ordinal), untrusted.ToString());
    }

    [Fact]
    public async Task A_tenants_queued_build_is_its_own_and_only_it_can_cancel_it()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var env = farm.Env(farm.AcmeToken);
        env["FARM_RABBITMQ"] = farm.AcmeAmqpUrl;

        var submitted = await FarmCli.RunAsync(env, null, "submit", Context(marker, "sleep 120"));

        Assert.True(submitted.ExitCode == 0, submitted + farm.Diagnostics());
        var id = submitted.Stdout.Trim();
        using var acme = farm.Http(farm.AcmeToken);
        await Wait.UntilAsync(
            async () => (await GetAsync(acme, $"builds/{id}/logs")).Body.Contains($"tenant-output {marker}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(90),
            () => $"acme to see its queued build {id} run its RUN step" + farm.Diagnostics());

        using var globex = farm.Http(farm.GlobexToken);
        using (var notTheirs = await globex.PostAsync($"builds/{id}/cancel", null))
        {
            Assert.Equal(HttpStatusCode.NotFound, notTheirs.StatusCode);
        }

        using var reader = farm.Http(farm.AcmeReadToken);
        using (var readOnly = await reader.PostAsync($"builds/{id}/cancel", null))
        {
            Assert.Equal(HttpStatusCode.Forbidden, readOnly.StatusCode);
        }

        Assert.Equal("running", (string?)JsonNode.Parse((await GetAsync(acme, $"builds/{id}")).Body)!["status"]);
        using (var cancelled = await acme.PostAsync($"builds/{id}/cancel", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, cancelled.StatusCode);
        }

        await Wait.UntilAsync(
            async () => (string?)JsonNode.Parse((await GetAsync(acme, $"builds/{id}")).Body)!["errorCode"] == "FARM4215",
            TimeSpan.FromSeconds(60),
            () => $"acme's build {id} to end cancelled (FARM4215)" + farm.Diagnostics());
    }

    [Fact]
    public async Task Queued_submissions_of_users_in_no_tenant_or_without_permission_never_become_builds()
    {
        var env = farm.Env(farm.AcmeToken);
        env["FARM_RABBITMQ"] = farm.StrangerAmqpUrl;
        var stranger = await FarmCli.RunAsync(env, null, "submit", Context("stranger"));
        Assert.True(stranger.ExitCode == 0, stranger.ToString());
        var id = stranger.Stdout.Trim();
        await Wait.UntilAsync(
            () => farm.Coordinator.Output().Contains($"Queued submission {id} dropped", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60),
            () => $"the coordinator to drop {id}, published by a user of no tenant" + farm.Diagnostics());
        using var admin = farm.Http(farm.AdminToken);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(admin, $"builds/{id}")).Code);

        env["FARM_RABBITMQ"] = farm.UnprivilegedAmqpUrl;
        var unprivileged = await FarmCli.RunAsync(env, null, "submit", Context("nobody"));
        Assert.True(unprivileged.ExitCode != 0 && unprivileged.Stderr.Contains("FARM5016", StringComparison.Ordinal) && unprivileged.Stderr.Contains("ACCESS_REFUSED", StringComparison.Ordinal), unprivileged.ToString());
    }

    [Fact]
    public async Task No_token_ever_appears_in_the_coordinators_output()
    {
        var unknown = "farm_" + Guid.NewGuid().ToString("N");
        using (var acme = farm.Http(farm.AcmeToken))
        using (var forged = farm.Http(unknown))
        {
            _ = await GetAsync(acme, "api/builds");
            _ = await GetAsync(acme, $"builds/{Guid.NewGuid()}");
            _ = await GetAsync(forged, "api/builds");
        }

        var status = await FarmCli.RunAsync(farm.Env(farm.GlobexToken), null, "status", Guid.NewGuid().ToString());
        Assert.Contains("FARM5014", status.Stderr, StringComparison.Ordinal);

        var output = farm.Coordinator.Output();
        // Debug level: the authentication handler's outcomes are logged, without what was presented.
        Assert.Contains("FarmToken was not authenticated", output, StringComparison.Ordinal);
        foreach (var token in farm.Tokens.Append(unknown))
        {
            Assert.DoesNotContain(token, output, StringComparison.Ordinal);
            Assert.DoesNotContain(token[5..], output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_coordinator_bound_beyond_loopback_without_tokens_refuses_to_start()
    {
        await using var exposed = CoordinatorProcess.Start(farm.VirtualHost.AmqpUrl, 0, $"registry://{farm.Repository}/cache", Path.Combine(farm.Directory, "exposed"), new Dictionary<string, string>
        {
            ["Farm__Coordinator__HttpAddress"] = "0.0.0.0",
        });

        var code = await exposed.WaitForExitAsync(TimeSpan.FromSeconds(60));

        var output = exposed.Output();
        Assert.True(code != 0, output);
        Assert.Contains("farm-coordinator: FARM4232:", output, StringComparison.Ordinal);
        Assert.Contains("Farm:Coordinator:Auth:Disabled=true", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RabbitMQ_refuses_a_job_result_from_a_tenants_user_with_the_documented_permissions()
    {
        var forged = ForgedResult(Guid.NewGuid(), "sha256:" + new string('0', 64));

        var refused = await Assert.ThrowsAnyAsync<Exception>(() => PublishAsync(farm.AcmeAmqpUrl, "Farm.Contracts:LayerBuilt", forged, userId: true));

        Assert.Contains("ACCESS_REFUSED", refused.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_forged_job_result_from_a_user_with_write_permission_is_dropped_and_the_build_gets_the_real_layer()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var gate = Farm.Oci.Net.FreePorts.Tcp();
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        // The RUN step holds until the test opens the gate: the forged results arrive while the real job runs.
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {farm.Base}
            RUN --network=host until wget -q -O /dev/null http://127.0.0.1:{gate}/; do sleep 0.2; done; echo "real {marker}" > /real.txt
            """);
        var env = farm.Env(farm.AcmeToken);
        env["FARM_RABBITMQ"] = farm.AcmeAmqpUrl;
        var submitted = await FarmCli.RunAsync(env, null, "submit", "--allow", "network.host", dir);
        Assert.True(submitted.ExitCode == 0, submitted + farm.Diagnostics());
        var id = submitted.Stdout.Trim();

        // Cache keys are hashes of what a Dockerfile says: a forger can compute them. Here the build's events say it.
        using var acme = farm.Http(farm.AcmeToken);
        string? cacheKey = null;
        string? stepId = null;
        await Wait.UntilAsync(
            async () =>
            {
                var (_, events) = await GetAsync(acme, $"builds/{id}/events");
                var started = events.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!)
                    .FirstOrDefault(e => (string?)e["type"] == "StepStarted" && ((string?)e["display"])?.Contains("RUN", StringComparison.Ordinal) == true);
                (cacheKey, stepId) = ((string?)started?["cacheKey"], (string?)started?["stepId"]);
                return cacheKey is not null;
            },
            TimeSpan.FromSeconds(90),
            () => $"build {id} to start its RUN step" + farm.Diagnostics());

        // Forged by globex's misconfigured user: once with its validated user_id, once with none.
        await PublishAsync(farm.ForgerAmqpUrl, "Farm.Contracts:LayerBuilt", ForgedResult(Guid.Parse(id), cacheKey!), userId: true);
        await PublishAsync(farm.ForgerAmqpUrl, "Farm.Contracts:LayerBuilt", ForgedResult(Guid.Parse(id), cacheKey!), userId: false);
        var dropped = $"Job result for layer {cacheKey} dropped: FARM4250";
        await Wait.UntilAsync(
            () => farm.Coordinator.Output().Split('\n').Count(l => l.Contains(dropped, StringComparison.Ordinal)) >= 2,
            TimeSpan.FromSeconds(60),
            () => "the coordinator to drop both forged results with FARM4250" + farm.Diagnostics());
        Assert.Contains("is not one of the farm's", farm.Coordinator.Output(), StringComparison.Ordinal);
        Assert.Contains("has no user_id property", farm.Coordinator.Output(), StringComparison.Ordinal);

        // What else a worker publishes: a line into the build's output, and the heartbeat of a worker that does not exist.
        var forgedLine = new JsonObject
        {
            ["buildId"] = id, ["stepId"] = stepId, ["jobId"] = Guid.NewGuid(), ["stream"] = "stdout", ["line"] = $"forged {marker}", ["at"] = DateTimeOffset.UtcNow,
        };
        await PublishAsync(farm.ForgerAmqpUrl, "Farm.Contracts:StepLogLine", forgedLine, userId: true);
        await PublishAsync(farm.ForgerAmqpUrl, "Farm.Contracts:WorkerHeartbeat", new JsonObject { ["name"] = "forged-worker", ["slots"] = 64 }, userId: true);
        await Wait.UntilAsync(
            () => farm.Coordinator.Output().Contains("A step output line from the AMQP user", StringComparison.Ordinal)
                && farm.Coordinator.Output().Contains("A worker heartbeat from the AMQP user", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60),
            () => "the coordinator to drop the forged output line and heartbeat" + farm.Diagnostics());

        JsonNode? final = null;
        await LoopbackGate.AnsweringAsync(gate, () => Wait.UntilAsync(
            async () =>
            {
                final = JsonNode.Parse((await GetAsync(acme, $"builds/{id}")).Body);
                return (string?)final?["status"] is "succeeded" or "failed";
            },
            TimeSpan.FromMinutes(3),
            () => $"build {id} to end; last status: {final?.ToJsonString()}" + farm.Diagnostics()));

        Assert.True((string?)final!["status"] == "succeeded", final.ToJsonString() + farm.Diagnostics());
        var run = final["steps"]!.AsArray().Single(s => ((string?)s!["display"])?.Contains("RUN", StringComparison.Ordinal) == true)!;
        Assert.Equal(SharedFarmFixture.WorkerName, (string?)run["worker"]);
        Assert.Equal("built", (string?)run["status"]);
        Assert.NotNull(run["layer"]);
        Assert.DoesNotContain($"forged {marker}", (await GetAsync(acme, $"builds/{id}/logs")).Body, StringComparison.Ordinal);
        using var admin = farm.Http(farm.AdminToken);
        var workers = (await GetAsync(admin, "api/workers")).Body;
        Assert.Contains(SharedFarmFixture.WorkerName, workers, StringComparison.Ordinal);
        Assert.DoesNotContain("forged-worker", workers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tenants_ADD_cannot_fetch_from_the_farms_own_machine()
    {
        // What a Dockerfile could read into a layer: a service on the worker's loopback (here, one the test listens with).
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var dir = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"FROM {farm.Base}\nADD http://127.0.0.1:{port}/v2/_catalog /catalog.json\n");

        var built = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", dir);

        Assert.True(built.ExitCode != 0, built + farm.Diagnostics());
        Assert.True(built.Stderr.Contains($"(FARM1213): ADD source 'http://127.0.0.1:{port}/v2/_catalog': a worker does not fetch from 127.0.0.1, which is this machine.", StringComparison.Ordinal), built.ToString());
        Assert.False(listener.Pending(), "the worker connected to the loopback service");
    }

    /// <summary>A well-formed LayerBuilt that says the step changed nothing, from a worker that does not exist.</summary>
    private static JsonObject ForgedResult(Guid buildId, string cacheKey)
    {
        var now = DateTimeOffset.UtcNow;
        var timings = new JsonObject();
        foreach (var phase in new[] { "queued", "workerStart", "inputFetchStart", "inputFetchEnd", "executionStart", "executionEnd", "diffStart", "diffEnd", "uploadStart", "uploadEnd" })
        {
            timings[phase] = now;
        }

        return new JsonObject
        {
            ["jobId"] = Guid.NewGuid(),
            ["buildId"] = buildId,
            ["stepId"] = "forged",
            ["cacheKey"] = cacheKey,
            ["layer"] = null,
            ["worker"] = "forger",
            ["timings"] = timings,
        };
    }

    /// <summary>Publishes <paramref name="message"/> as a MassTransit envelope to <paramref name="exchange"/>, as <paramref name="amqpUrl"/>'s user, with publisher confirms.</summary>
    private static async Task PublishAsync(string amqpUrl, string exchange, JsonObject message, bool userId)
    {
        var url = new Uri(amqpUrl);
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = url, AutomaticRecoveryEnabled = false };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new RabbitMQ.Client.CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        var envelope = new JsonObject
        {
            ["messageId"] = Guid.NewGuid(),
            ["messageType"] = new JsonArray("urn:message:" + exchange),
            ["message"] = message,
        };
        var properties = new RabbitMQ.Client.BasicProperties
        {
            ContentType = "application/vnd.masstransit+json",
            UserId = userId ? factory.UserName : null,
        };
        await channel.BasicPublishAsync(exchange, string.Empty, mandatory: false, properties, Encoding.UTF8.GetBytes(envelope.ToJsonString()));
    }

    [Fact]
    public async Task An_oci_layout_image_a_tenant_uploaded_is_not_readable_by_another_tenant_naming_its_digest()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var image = $"{farm.Repository}/acme-layout:{marker}";
        Assert.True((await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", "--push", "-t", image, Context(marker))).ExitCode == 0, farm.Diagnostics());
        var layout = Path.Combine(farm.Directory, "layout-" + marker);
        await Tool.RunAsync("skopeo", "copy", "--src-tls-verify=false", $"docker://{image}", $"oci:{layout}:app");
        var manifest = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(layout, "index.json")))!["manifests"]![0]!["digest"]!;
        var context = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        File.WriteAllText(Path.Combine(context, "Dockerfile"), "FROM app\nRUN cat /msg.txt\n");

        // Acme's own build uploads the layout's image to the farm's cache store and reads it.
        var own = await FarmCli.RunAsync(farm.Env(farm.AcmeToken), null, "build", "--progress", "plain", "--build-context", $"app=oci-layout://{layout}", context);
        Assert.True(own.ExitCode == 0, own + farm.Diagnostics());
        Assert.Contains($"secret of acme {marker}", own.Stderr, StringComparison.Ordinal);

        // Globex names the same manifest digest, without proofs of its blobs or with made-up ones: the build fails
        // before any step, and nothing of acme's image reaches globex.
        using var globex = farm.Http(farm.GlobexToken);
        // A manifest and config globex holds (here: the very ones, as if it had written a manifest of its own listing
        // acme's layers) proven for its build, the layers not: the first layer without a proof stops the build.
        var globexBuild = Guid.NewGuid();
        var blobs = Path.Combine(layout, "blobs", "sha256");
        var config = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(blobs, manifest["sha256:".Length..])))!["config"]!["digest"]!;
        var firstLayer = (string)JsonNode.Parse(File.ReadAllText(Path.Combine(blobs, manifest["sha256:".Length..])))!["layers"]![0]!["digest"]!;
        string Proof(string digest) => Farm.Oci.Stores.PossessionProof.Compute(globexBuild, File.ReadAllBytes(Path.Combine(blobs, digest["sha256:".Length..])));
        foreach (var (buildId, proofs, unproven) in new[]
        {
            (Guid.NewGuid(), string.Empty, manifest),
            (Guid.NewGuid(), $$""","storedImageProofs":{"{{manifest}}":"{{new string('0', 64)}}"}""", manifest),
            (globexBuild, $$""","storedImageProofs":{"{{manifest}}":"{{Proof(manifest)}}","{{config}}":"{{Proof(config)}}"}""", firstLayer),
        })
        {
            var body = $$"""{"buildId":"{{buildId}}","dockerfile":"FROM app\nRUN cat /msg.txt\n","contextDigest":"sha256:{{new string('0', 64)}}","options":{"namedContexts":[{"name":"app","storedImage":"{{manifest}}" """ + proofs + "}]}}";
            using var response = await globex.PostAsync("builds", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            var id = (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["buildId"]!;

            var events = await globex.GetStringAsync($"builds/{id}/events?follow=true");

            var failed = events.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).Single(e => (string?)e["type"] == "BuildFailed");
            Assert.StartsWith($"FARM4370: The named context 'app' (oci-layout://, image {manifest} in the farm's cache store) cannot be used: the submission holds no valid proof of the content of the blob {unproven}", (string?)failed["message"], StringComparison.Ordinal);
            Assert.DoesNotContain(marker, events, StringComparison.Ordinal);
        }
    }

    private static async Task<(HttpStatusCode Code, string Body)> GetAsync(HttpClient http, string route)
    {
        using var response = await http.GetAsync(route);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
