using System.Net;
using System.Text;
using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>
/// Registry credentials per tenant on a shared farm (<see cref="TenantCredentialsFarmFixture"/>): a build pushes with
/// its tenant's credentials or the ones its user passed with it, never the farm's; a registry's refusal names the
/// registry and what to configure; and after all of it no credential is found in any log, event, exported trace,
/// metric or log record, Redis key (grain state included) or pushed blob.
/// </summary>
public sealed class TenantCredentialsTests(TenantCredentialsFarmFixture farm) : IClassFixture<TenantCredentialsFarmFixture>
{
    private static RegistryClient FarmUserClient() => new(
        TestRegistries.Basic,
        new RegistryClientOptions { CertsDirectory = TestRegistries.CertsDirectory },
        StaticCredentialProvider.For(TestRegistries.Basic, new RegistryCredential { Username = TestRegistries.BasicUser, Password = TestRegistries.BasicPassword }));

    [Fact]
    public async Task A_tenant_pushes_to_a_private_registry_with_the_credentials_the_farm_holds_for_it()
    {
        var acme = farm.Builds.Acme;

        await AssertPushedAsync(acme, $"content of acme {acme.Marker}");
    }

    [Fact]
    public async Task A_tenant_without_credentials_is_refused_by_the_registry_even_though_the_farm_has_some()
    {
        var globex = farm.Builds.GlobexAnonymous;

        var said = AssertRefused(globex);
        Assert.Contains($"Registry {TestRegistries.Basic} refused anonymous access to push {globex.Image}", said, StringComparison.Ordinal);
        Assert.Contains("Farm:Coordinator:Tenants:globex:RegistryAuthFile", said, StringComparison.Ordinal);
        Assert.Contains($"farm login {TestRegistries.Basic}", said, StringComparison.Ordinal);
        using var client = FarmUserClient();
        await Assert.ThrowsAsync<ManifestNotFoundException>(() => client.PullManifestAsync(ImageReference.Parse(globex.Image), CancellationToken.None));
    }

    [Fact]
    public async Task A_user_logged_in_to_the_push_target_pushes_with_the_credentials_farm_build_passes()
    {
        var passed = farm.Builds.GlobexPassed;

        await AssertPushedAsync(passed, $"content of globex-passed {passed.Marker}");
    }

    [Fact]
    public void Passed_credentials_the_registry_refuses_fail_the_build_with_what_to_do()
    {
        var wrong = farm.Builds.GlobexWrong;

        var said = AssertRefused(wrong);
        Assert.Contains($"Registry {TestRegistries.Basic} refused the credentials of user '{TestRegistries.BasicUser}' passed with build {wrong.Id}", said, StringComparison.Ordinal);
        Assert.Contains($"farm login {TestRegistries.Basic}", said, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tenants_base_image_is_pulled_with_its_credentials_only()
    {
        var build = farm.Builds.GlobexPrivateBase;

        var said = AssertRefused(build);
        Assert.Contains($"Registry {TestRegistries.Basic} refused anonymous access to pull the base image {farm.Builds.Acme.Image}: tenant globex has no credentials", said, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_build_cache_goes_to_a_private_registry_with_the_tenants_or_the_passed_credentials_and_holds_none()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var context = Directory.CreateDirectory(Path.Combine(farm.Directory, "ctx-cache-" + marker)).FullName;
        File.WriteAllText(Path.Combine(context, "Dockerfile"), $"""
            FROM {farm.Base}
            RUN echo "cache-output {marker}" > /out
            """);
        var loggedIn = Path.GetDirectoryName(TenantCredentialsFarmFixture.DockerConfigWith(
            Path.Combine(farm.Directory, "docker-cache-" + marker), (TestRegistries.Basic, TestRegistries.BasicUser, TestRegistries.BasicPassword)))!;
        var empty = Path.Combine(farm.Directory, "docker-cache-empty-" + marker);
        var acmeCache = $"{farm.Private}/cache:acme-{marker}";
        var passedCache = $"{farm.Private}/cache:passed-{marker}";
        var refusedCache = $"{farm.Private}/cache:refused-{marker}";

        // Acme's user has none: the tenant's on the farm; globex's user passes their own (no tag, no --push); a globex
        // user without any is refused by the registry, and the build fails as buildx's does.
        var acme = await FarmCli.RunAsync(farm.Env(farm.AcmeToken, empty), null, "build", "--progress", "plain", "--cache-to", $"type=registry,ref={acmeCache}", context);
        var passed = await FarmCli.RunAsync(farm.Env(farm.GlobexToken, loggedIn), null, "build", "--progress", "plain", "--cache-to", $"type=registry,ref={passedCache}", context);
        var refused = await FarmCli.RunAsync(farm.Env(farm.GlobexToken, empty), null, "build", "--progress", "plain", "--cache-to", $"type=registry,ref={refusedCache}", context);

        Assert.True(acme.ExitCode == 0, acme + farm.Diagnostics());
        Assert.True(passed.ExitCode == 0, passed + farm.Diagnostics());
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"FARM4351: The build cache could not be exported to {refusedCache}", refused.Stderr, StringComparison.Ordinal);
        using var client = FarmUserClient();
        foreach (var cache in new[] { acmeCache, passedCache })
        {
            var reference = ImageReference.Parse(cache);
            var manifest = await client.GetManifestAsync(reference.Repository, reference.Reference, CancellationToken.None);
            var parsed = OciJson.ParseManifest(manifest.Content.Span);
            var config = Encoding.UTF8.GetString(await client.GetBlobBytesAsync(reference.Repository, parsed.Config, CancellationToken.None));
            Assert.Equal("application/vnd.farm.buildcache.v1", parsed.ArtifactType);
            foreach (var secret in farm.Secrets)
            {
                Assert.DoesNotContain(secret, Encoding.UTF8.GetString(manifest.Content.Span), StringComparison.Ordinal);
                Assert.DoesNotContain(secret, config, StringComparison.Ordinal);
            }
        }

        var output = farm.Coordinator.Output();
        Assert.Contains(passedCache, output, StringComparison.Ordinal);
        foreach (var secret in farm.Secrets)
        {
            Assert.DoesNotContain(secret, output, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, passed.Stderr + passed.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Credentials_for_a_registry_no_tag_pushes_to_are_refused_and_nothing_starts()
    {
        using var http = farm.Http(farm.GlobexToken);
        var id = Guid.NewGuid();
        var json = $"{{\"{TenantCredentialsFarmFixture.DecoyRegistry}\":{{\"username\":\"u\",\"password\":\"{farm.DecoyPassword}\"}}}}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "builds")
        {
            Content = new StringContent($"{{\"buildId\":\"{id}\",\"dockerfile\":\"FROM {farm.Base}\",\"tags\":[\"{farm.Private}/x:1\"],\"push\":true}}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Farm-Registry-Auth", Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_'));

        using var response = await http.SendAsync(request);

        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("FARM4242", body, StringComparison.Ordinal);
        Assert.Contains(TenantCredentialsFarmFixture.DecoyRegistry, body, StringComparison.Ordinal);
        Assert.DoesNotContain(farm.DecoyPassword, body, StringComparison.Ordinal);
        using var status = await http.GetAsync($"builds/{id}");
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
    }

    /// <summary>
    /// The leak search: every place a build leaves something, searched for every secret in every form it could travel
    /// in; each place is also checked to hold the builds' ids or content, so the search cannot pass by looking nowhere.
    /// </summary>
    [Fact]
    public async Task After_builds_with_registry_credentials_no_log_event_trace_Redis_key_or_layer_holds_one()
    {
        var builds = farm.Builds.All;
        var ids = builds.Select(b => b.Id).ToList();
        var places = new Dictionary<string, string>();

        // Exported telemetry: wait until the builds' spans are out (each build's span carries its id).
        await Wait.UntilAsync(
            () => ids.All(id => LeakSearch.Text(farm.Otlp.Bodies("/v1/traces")).Contains(id, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60),
            () => "every build's trace to be exported to the OTLP sink");
        await Wait.UntilAsync(() => LeakSearch.Text(farm.Otlp.Bodies("/v1/logs")).Contains("FARM4240", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => "the refused builds' log records to be exported to the OTLP sink");
        await Wait.UntilAsync(() => LeakSearch.Text(farm.Otlp.Bodies("/v1/metrics")).Contains("farm.builds", StringComparison.Ordinal), TimeSpan.FromSeconds(60), () => "the build metrics to be exported to the OTLP sink");
        places["exported traces"] = LeakSearch.Text(farm.Otlp.Bodies("/v1/traces"));
        places["exported logs"] = LeakSearch.Text(farm.Otlp.Bodies("/v1/logs"));
        places["exported metrics"] = LeakSearch.Text(farm.Otlp.Bodies("/v1/metrics"));

        // Process output at Debug level, and what each user saw.
        places["coordinator output"] = farm.Coordinator.Output();
        places["worker output"] = farm.Worker.Output();
        places["CLI output"] = string.Join("\n", builds.Select(b => b.Result.Stdout + b.Result.Stderr));

        // Every build's event stream and status, as its tenant's admin sees them.
        using (var http = farm.Http(farm.AdminToken))
        {
            var api = new StringBuilder();
            foreach (var id in ids)
            {
                api.AppendLine(await http.GetStringAsync($"builds/{id}/events"));
                api.AppendLine(await http.GetStringAsync($"builds/{id}"));
            }

            api.AppendLine(await http.GetStringAsync("api/builds"));
            places["event streams and API"] = api.ToString();
        }

        // Every key of the farm's Redis: grain state, reminders, membership, the event stream, the action cache.
        places["Redis"] = await LeakSearch.DumpRedisAsync(farm.Redis.Configuration);

        // Every blob of the pushed images.
        using (var client = FarmUserClient())
        {
            var blobs = new StringBuilder();
            foreach (var build in new[] { farm.Builds.Acme, farm.Builds.GlobexPassed })
            {
                var pulled = await client.PullManifestAsync(ImageReference.Parse(build.Image), CancellationToken.None);
                blobs.AppendLine(await LeakSearch.ImageTextAsync(client, pulled));
            }

            places["pushed images"] = blobs.ToString();
        }

        // Not vacuous: each place holds what the builds left there.
        foreach (var place in new[] { "exported traces", "coordinator output", "event streams and API", "Redis", "CLI output" })
        {
            Assert.True(ids.All(id => places[place].Contains(id, StringComparison.Ordinal)), $"{place} should name every build: it is searched for secrets");
        }

        // The worker ran the builds' steps (and never saw a credential: jobs carry none).
        Assert.Contains("started on creds-worker", places["worker output"], StringComparison.Ordinal);
        Assert.Contains("FARM4240", places["exported logs"], StringComparison.Ordinal);
        Assert.Contains($"content of acme {farm.Builds.Acme.Marker}", places["pushed images"], StringComparison.Ordinal);
        Assert.Contains("farm.builds", places["exported metrics"], StringComparison.Ordinal);

        var found = (from place in places
                     from secret in farm.Secrets
                     where place.Value.Contains(secret, StringComparison.Ordinal)
                     select $"{place.Key} holds a secret ({secret.Length} characters, starting '{secret[..3]}')").ToList();
        Assert.True(found.Count == 0, string.Join(Environment.NewLine, found));
    }

    /// <summary>Asserts <paramref name="build"/> succeeded and its pushed image, pulled as the registry's user, holds <paramref name="content"/>.</summary>
    private async Task AssertPushedAsync(FarmBuild build, string content)
    {
        Assert.True(build.Result.ExitCode == 0, build.Result + farm.Diagnostics());
        using var client = FarmUserClient();
        var pulled = await client.PullManifestAsync(ImageReference.Parse(build.Image), CancellationToken.None);
        Assert.Contains(content, await LeakSearch.ImageTextAsync(client, pulled), StringComparison.Ordinal);
    }

    /// <summary>Asserts <paramref name="build"/> failed with FARM4240 (a registry refused it); returns what its user saw.</summary>
    private static string AssertRefused(FarmBuild build)
    {
        var said = build.Result.Stdout + build.Result.Stderr;
        Assert.True(build.Result.ExitCode != 0, build.Result.ToString());
        Assert.Contains("FARM4240", said, StringComparison.Ordinal);
        return said;
    }
}
