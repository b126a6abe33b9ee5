using System.Text;
using System.Text.Json.Nodes;
using Farm.Oci.Registry;

namespace Farm.Oci.Tests;

public sealed class RegistryReferenceTests
{
    [Theory]
    [InlineData("alpine", "docker.io", "library/alpine", "latest")]
    [InlineData("alpine:3.20", "docker.io", "library/alpine", "3.20")]
    [InlineData("user/app", "docker.io", "user/app", "latest")]
    [InlineData("index.docker.io/library/debian:12", "docker.io", "library/debian", "12")]
    [InlineData("127.0.0.1:5100/farm/app:v1", "127.0.0.1:5100", "farm/app", "v1")]
    [InlineData("localhost/app", "localhost", "app", "latest")]
    [InlineData("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest")]
    [InlineData("ghcr.io/o/r:1.0-rc_1", "ghcr.io", "o/r", "1.0-rc_1")]
    public void Parses_like_docker(string text, string registry, string repository, string tag)
    {
        var reference = ImageReference.Parse(text);
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Null(reference.Digest);
    }

    [Fact]
    public void Digest_reference_has_no_default_tag_and_asks_by_digest()
    {
        var digest = Digest.Sha256("x"u8);
        var reference = ImageReference.Parse($"127.0.0.1:5100/farm/app@{digest}");
        Assert.Null(reference.Tag);
        Assert.Equal(digest.ToString(), reference.Reference);

        var both = ImageReference.Parse($"127.0.0.1:5100/farm/app:v1@{digest}");
        Assert.Equal("v1", both.Tag);
        Assert.Equal(digest.ToString(), both.Reference);
        Assert.Equal($"127.0.0.1:5100/farm/app:v1@{digest}", both.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("Upper/case")]
    [InlineData("app:bad tag")]
    [InlineData("app@sha256:abc")]
    [InlineData("app:-dash")]
    public void Rejects_invalid_references_with_code(string text)
    {
        var error = Assert.Throws<InvalidImageReferenceException>(() => ImageReference.Parse(text));
        Assert.StartsWith("FARM2202", error.Message);
    }
}

public sealed class RegistryAuthChallengeTests
{
    [Fact]
    public void Parses_bearer_parameters_with_quoted_commas()
    {
        var challenge = AuthChallenge.Parse("Bearer", "realm=\"http://127.0.0.1:5109/token\",service=\"farm-registry\",scope=\"repository:farm/a:pull,push\",error=\"insufficient_scope\"");
        Assert.True(challenge.IsBearer);
        Assert.Equal("http://127.0.0.1:5109/token", challenge.Realm);
        Assert.Equal("farm-registry", challenge.Service);
        Assert.Equal("repository:farm/a:pull,push", challenge.Scope);
        Assert.Equal("insufficient_scope", challenge.Error);
    }

    [Fact]
    public void Parses_unquoted_values_and_escapes()
    {
        var challenge = AuthChallenge.Parse("Basic", "realm=plain, charset=\"UTF\\\"8\"");
        Assert.True(challenge.IsBasic);
        Assert.Equal("plain", challenge.Realm);
        Assert.Equal("UTF\"8", challenge.Parameters["charset"]);
    }
}

public sealed class RegistryDockerConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-docker-config-").FullName;

    private string ConfigPath => Path.Combine(_dir, "config.json");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Reads_entries_keyed_by_host_or_url_in_both_encodings()
    {
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3:cret"));
        await File.WriteAllTextAsync(ConfigPath, $$"""
            {
              "auths": {
                "127.0.0.1:5101": { "auth": "{{auth}}" },
                "https://ghcr.io/v2/": { "username": "bob", "password": "pw" },
                "https://index.docker.io/v1/": { "auth": "{{Convert.ToBase64String("hub:hubpw"u8)}}" }
              }
            }
            """);
        var config = new DockerConfig(ConfigPath);

        var local = await config.GetCredentialAsync("127.0.0.1:5101", CancellationToken.None);
        Assert.Equal("alice", local!.Username);
        Assert.Equal("s3:cret", local.Password);
        Assert.Equal("bob", (await config.GetCredentialAsync("ghcr.io", CancellationToken.None))!.Username);
        Assert.Equal("hub", (await config.GetCredentialAsync("docker.io", CancellationToken.None))!.Username);
        Assert.Null(await config.GetCredentialAsync("127.0.0.1:5100", CancellationToken.None));
    }

    [Fact]
    public async Task Login_and_logout_keep_every_other_field()
    {
        await File.WriteAllTextAsync(ConfigPath, """{"auths":{"other:1":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud"},"psFormat":"table"}""");
        var config = new DockerConfig(ConfigPath);

        await config.LoginAsync("127.0.0.1:5101", new RegistryCredential { Username = "farm", Password = "farm-secret" }, CancellationToken.None);
        var afterLogin = JsonNode.Parse(await File.ReadAllTextAsync(ConfigPath))!;
        Assert.Equal("table", (string?)afterLogin["psFormat"]);
        Assert.Equal("gcloud", (string?)afterLogin["credHelpers"]!["gcr.io"]);
        Assert.NotNull(afterLogin["auths"]!["other:1"]);
        Assert.Equal("farm-secret", (await config.GetCredentialAsync("127.0.0.1:5101", CancellationToken.None))!.Password);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigPath));
        }

        Assert.True(await config.LogoutAsync("http://127.0.0.1:5101", CancellationToken.None));
        Assert.Null(await config.GetCredentialAsync("127.0.0.1:5101", CancellationToken.None));
        var afterLogout = JsonNode.Parse(await File.ReadAllTextAsync(ConfigPath))!;
        Assert.NotNull(afterLogout["auths"]!["other:1"]);
        Assert.Equal("table", (string?)afterLogout["psFormat"]);
        Assert.False(await config.LogoutAsync("127.0.0.1:5101", CancellationToken.None));
    }

    [Fact]
    public async Task Docker_hub_login_uses_dockers_key()
    {
        var config = new DockerConfig(ConfigPath);
        await config.LoginAsync("docker.io", new RegistryCredential { Username = "u", Password = "p" }, CancellationToken.None);
        var root = JsonNode.Parse(await File.ReadAllTextAsync(ConfigPath))!;
        Assert.NotNull(root["auths"]!["https://index.docker.io/v1/"]);
    }

    [Fact]
    public async Task Malformed_config_is_a_clear_error()
    {
        await File.WriteAllTextAsync(ConfigPath, "{not json");
        var error = await Assert.ThrowsAsync<DockerConfigException>(() => new DockerConfig(ConfigPath).GetCredentialAsync("x", CancellationToken.None).AsTask());
        Assert.StartsWith("FARM2217", error.Message);
        Assert.Contains(ConfigPath, error.Message);
    }

    [Fact]
    public void Credential_to_string_hides_the_password()
    {
        var text = new RegistryCredential { Username = "farm", Password = "farm-secret" }.ToString();
        Assert.Contains("farm", text);
        Assert.DoesNotContain("farm-secret", text);
    }
}
