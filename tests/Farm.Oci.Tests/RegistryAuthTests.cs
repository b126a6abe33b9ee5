using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Oci.Tests;

/// <summary>htpasswd basic auth (127.0.0.1:5101), with credentials from a Docker config written by <see cref="DockerConfig"/>.</summary>
public sealed class RegistryBasicAuthTests : IAsyncLifetime, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-docker-config-").FullName;

    public Task InitializeAsync() => TestRegistries.EnsureAnsweringAsync(TestRegistries.Basic);

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Push_and_pull_with_credentials_from_docker_config()
    {
        var config = new DockerConfig(Path.Combine(_dir, "config.json"));
        await config.LoginAsync(TestRegistries.Basic, new RegistryCredential { Username = TestRegistries.BasicUser, Password = TestRegistries.BasicPassword }, CancellationToken.None);
        using var client = TestClients.For(TestRegistries.Basic, config);
        var repo = TestClients.UniqueRepository("basic");
        var image = RegistryTestImage.Create("basic");

        await client.PingAsync(CancellationToken.None);
        await image.PushAsync(client, repo, "v1");
        var pulled = await client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Basic}/{repo}:v1"), CancellationToken.None);

        Assert.Equal(image.Digest, pulled.Digest);
        Assert.Equal(["v1"], await client.ListTagsAsync(repo, CancellationToken.None));
    }

    [Fact]
    public async Task Without_credentials_the_error_says_to_log_in()
    {
        using var client = TestClients.For(TestRegistries.Basic);
        var error = await Assert.ThrowsAsync<RegistryAuthenticationException>(() =>
            client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Basic}/farm/any:v1"), CancellationToken.None));
        Assert.StartsWith("FARM2210", error.Message);
        Assert.Contains($"farm login {TestRegistries.Basic}", error.Message);
    }

    [Fact]
    public async Task Wrong_password_is_reported_as_refused_without_echoing_it()
    {
        var credentials = StaticCredentialProvider.For(TestRegistries.Basic, new RegistryCredential { Username = "farm", Password = "not-the-password" });
        using var client = TestClients.For(TestRegistries.Basic, credentials);
        var error = await Assert.ThrowsAsync<RegistryAuthenticationException>(() => client.PingAsync(CancellationToken.None));
        Assert.Contains("refused the credentials of user 'farm'", error.Message);
        Assert.DoesNotContain("not-the-password", error.Message);
    }
}

/// <summary>Token auth (127.0.0.1:5102) through the in-test token server on 127.0.0.1:5109.</summary>
public sealed class RegistryTokenAuthTests : IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Token);
        _ = TokenServer.Instance;
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Push_and_pull_with_scoped_tokens_fetched_once_per_scope()
    {
        using var client = TestClients.For(TestRegistries.Token, TestClients.FarmUser(TestRegistries.Token));
        var repo = TestClients.UniqueRepository("token");
        var image = RegistryTestImage.Create("token");

        await image.PushAsync(client, repo, "v1");
        var pulled = await client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Token}/{repo}:v1"), CancellationToken.None);
        var layer = await TestClients.ReadAllAsync(await client.OpenBlobAsync(repo, image.Layers[0].Descriptor.Digest, image.Layers[0].Descriptor.Size, CancellationToken.None));

        Assert.Equal(image.Digest, pulled.Digest);
        Assert.Equal(image.Layers[0].Content, layer);
        var mine = TokenServer.Instance.Requests.Where(r => r.Scopes.Any(s => s.Contains(repo, StringComparison.Ordinal))).ToList();
        Assert.All(mine, r => Assert.Equal(TestRegistries.BasicUser, r.User));
        Assert.All(mine, r => Assert.Equal(TestRegistries.TokenService, r.Service));
        // Three blob pushes, a manifest push, a pull and a download: one token per distinct scope, reused.
        Assert.Single(mine, r => r.Scopes.SequenceEqual([$"repository:{repo}:pull,push"]));
        Assert.Single(mine, r => r.Scopes.SequenceEqual([$"repository:{repo}:pull"]));
        Assert.Equal(2, mine.Count);
    }

    [Fact]
    public async Task Mount_asks_for_push_on_the_target_and_pull_on_the_source()
    {
        using var client = TestClients.For(TestRegistries.Token, TestClients.FarmUser(TestRegistries.Token));
        var source = TestClients.UniqueRepository("tsrc");
        var target = TestClients.UniqueRepository("tdst");
        var blob = TestBlob.Of(System.Security.Cryptography.RandomNumberGenerator.GetBytes(512), MediaTypes.OciLayerGzip);
        using (var stream = blob.Open())
        {
            await client.PushBlobAsync(source, blob.Descriptor, stream, null, CancellationToken.None);
        }

        using var again = blob.Open();
        Assert.Equal(BlobOutcome.Mounted, await client.PushBlobAsync(target, blob.Descriptor, again, source, CancellationToken.None));
        Assert.Contains(TokenServer.Instance.Requests, r =>
            r.Scopes.Contains($"repository:{target}:pull,push") && r.Scopes.Contains($"repository:{source}:pull"));
    }

    [Fact]
    public async Task Anonymous_token_can_pull_but_push_says_to_log_in()
    {
        var repo = TestClients.UniqueRepository("tanon");
        var image = RegistryTestImage.Create("tanon", layers: 1);
        using (var writer = TestClients.For(TestRegistries.Token, TestClients.FarmUser(TestRegistries.Token)))
        {
            await image.PushAsync(writer, repo, "v1");
        }

        using var anonymous = TestClients.For(TestRegistries.Token);
        var pulled = await anonymous.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Token}/{repo}:v1"), CancellationToken.None);
        Assert.Equal(image.Digest, pulled.Digest);
        Assert.Contains(TokenServer.Instance.Requests, r => r.User is null && r.Scopes.SequenceEqual([$"repository:{repo}:pull"]));

        var error = await Assert.ThrowsAsync<RegistryAuthenticationException>(() =>
            anonymous.PushManifestAsync(repo, "v2", image.ManifestBytes, MediaTypes.OciManifest, CancellationToken.None));
        Assert.Contains($"farm login {TestRegistries.Token}", error.Message);
    }

    [Fact]
    public async Task Token_server_refusing_the_password_is_an_authentication_error()
    {
        var credentials = StaticCredentialProvider.For(TestRegistries.Token, new RegistryCredential { Username = "farm", Password = "wrong" });
        using var client = TestClients.For(TestRegistries.Token, credentials);
        var error = await Assert.ThrowsAsync<RegistryAuthenticationException>(() => client.PingAsync(CancellationToken.None));
        Assert.Contains("refused the credentials of user 'farm'", error.Message);
    }
}

/// <summary>The TLS registry (127.0.0.1:5103), trusted through certs.d/127.0.0.1:5103/ca.crt.</summary>
public sealed class RegistryTlsTests : IAsyncLifetime, IDisposable
{
    private readonly string _emptyCerts = Directory.CreateTempSubdirectory("farm-certs-").FullName;

    public Task InitializeAsync() => TestRegistries.EnsureAnsweringAsync(TestRegistries.Tls, tls: true);

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => Directory.Delete(_emptyCerts, recursive: true);

    [Fact]
    public async Task Push_and_pull_over_https_with_the_test_ca()
    {
        using var client = TestClients.For(TestRegistries.Tls);
        var repo = TestClients.UniqueRepository("tls");
        var image = RegistryTestImage.Create("tls");

        await image.PushAsync(client, repo, "v1");
        var pulled = await client.PullManifestAsync(ImageReference.Parse($"{TestRegistries.Tls}/{repo}:v1"), CancellationToken.None);

        Assert.Equal(image.Digest, pulled.Digest);
        Assert.Equal("https", client.BaseUri!.Scheme);
    }

    [Fact]
    public async Task Without_the_ca_the_error_names_the_certs_d_path()
    {
        using var client = TestClients.For(TestRegistries.Tls, options: new RegistryClientOptions { CertsDirectory = _emptyCerts });
        var error = await Assert.ThrowsAsync<RegistryTlsException>(() => client.PingAsync(CancellationToken.None));
        Assert.StartsWith("FARM2215", error.Message);
        Assert.Contains(Path.Combine(_emptyCerts, TestRegistries.Tls, "ca.crt"), error.Message);
    }
}
