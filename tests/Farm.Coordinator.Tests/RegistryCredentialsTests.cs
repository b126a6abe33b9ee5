using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Oci.Registry;
using Microsoft.Extensions.Configuration;

namespace Farm.Coordinator.Tests;

/// <summary>
/// Which credentials a build's registry requests carry (<see cref="RegistryCredentials"/>), and the header
/// <c>farm build</c> passes its user's in (<see cref="PushCredentials"/>): the parts a shared farm's end-to-end test
/// (tests/Farm.Cli.Tests/TenantCredentialsTests.cs) cannot reach, such as a build resumed by another coordinator.
/// </summary>
public sealed class RegistryCredentialsTests : IDisposable
{
    private static readonly RegistryCredential Secret = new() { Username = "ci", Password = "s3cret-" + Guid.NewGuid().ToString("N") };

    private readonly string _directory = Directory.CreateTempSubdirectory("farm-regcreds-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static SubmitBuild Submission(string? tenant, params string[] tags) => new()
    {
        BuildId = Guid.NewGuid(),
        Dockerfile = "FROM scratch",
        Tags = tags,
        Push = true,
        Tenant = tenant,
    };

    [Fact]
    public void A_build_resumed_without_the_credentials_passed_with_it_fails_saying_to_submit_it_again()
    {
        var submission = Submission("acme", "registry.example:5000/acme/app:1") with { PushCredentialRegistries = ["registry.example:5000"] };
        var elsewhere = RegistryCredentials.None;

        var error = Assert.Throws<PushCredentialsLostException>(() => elsewhere.For(submission));

        Assert.StartsWith("FARM4241: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("registry.example:5000", error.Message, StringComparison.Ordinal);
        Assert.Contains("Submit the build again", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Passed_credentials_serve_their_registry_until_released_and_a_tenant_gets_nothing_from_the_farm()
    {
        var credentials = RegistryCredentials.None;
        var submission = Submission("acme", "registry.example:5000/acme/app:1") with { PushCredentialRegistries = ["registry.example:5000"] };
        Assert.True(credentials.Hold(submission.BuildId, new Dictionary<string, RegistryCredential> { ["registry.example:5000"] = Secret }));

        var access = credentials.For(submission)!;

        Assert.Equal(Secret, await access.GetCredentialAsync("registry.example:5000", CancellationToken.None));
        Assert.Null(await access.GetCredentialAsync("other.example:5000", CancellationToken.None));
        Assert.DoesNotContain(Secret.Password, access.ToString(), StringComparison.Ordinal);
        credentials.Release(submission.BuildId);
        Assert.Equal(0, credentials.HeldCount);
        Assert.Throws<PushCredentialsLostException>(() => credentials.For(submission));
    }

    [Fact]
    public async Task A_tenant_uses_its_registry_auth_file_and_a_build_without_tenant_or_credentials_the_farms_own()
    {
        var file = Path.Combine(_directory, "acme.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Secret.Username}:{Secret.Password}"));
        await File.WriteAllTextAsync(file, $"{{\"auths\":{{\"registry.example:5000\":{{\"auth\":\"{auth}\"}}}}}}");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Farm:Coordinator:Tenants:acme:RegistryAuthFile"] = file,
        }).Build();

        var credentials = RegistryCredentials.Load(configuration);

        Assert.Equal(Secret, await credentials.For(Submission("acme"))!.GetCredentialAsync("registry.example:5000", CancellationToken.None));
        Assert.Null(await credentials.For(Submission("globex"))!.GetCredentialAsync("registry.example:5000", CancellationToken.None));
        Assert.Null(credentials.For(Submission(tenant: null)));
    }

    [Fact]
    public void A_registry_auth_file_that_is_missing_or_not_json_stops_the_start_without_quoting_it()
    {
        var broken = Path.Combine(_directory, "broken.json");
        File.WriteAllText(broken, "{\"auths\": " + Secret.Password);
        foreach (var (path, expected) in new[] { (Path.Combine(_directory, "missing.json"), "does not exist"), (broken, "not a readable Docker config.json") })
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Farm:Coordinator:Tenants:acme:RegistryAuthFile"] = path,
            }).Build();

            var error = Assert.Throws<TenantRegistrySettingsException>(() => RegistryCredentials.Load(configuration));

            Assert.StartsWith("FARM4243: Farm:Coordinator:Tenants:acme:RegistryAuthFile", error.Message, StringComparison.Ordinal);
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Secret.Password, error.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_header_round_trips_and_is_refused_for_a_registry_no_tag_pushes_to_or_when_malformed()
    {
        var submission = Submission("acme", "registry.example:5000/acme/app:1", "registry.example:5000/acme/app:latest");
        var header = PushCredentialsHeader.Encode(new Dictionary<string, RegistryCredential> { ["registry.example:5000"] = Secret });

        Assert.Equal(Secret, PushCredentials.Decode(header, submission)["registry.example:5000"]);

        var other = PushCredentialsHeader.Encode(new Dictionary<string, RegistryCredential> { ["other.example"] = Secret });
        var notPushed = Assert.Throws<InvalidPushCredentialsException>(() => PushCredentials.Decode(other, submission));
        Assert.Contains("other.example, which no tag of the build pushes to", notPushed.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidPushCredentialsException>(() => PushCredentials.Decode(header, submission with { Push = false }));
        var garbled = Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"registry.example:5000\": " + Secret.Password));
        var malformed = Assert.Throws<InvalidPushCredentialsException>(() => PushCredentials.Decode(garbled, submission));
        Assert.StartsWith("FARM4242: ", malformed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret.Password, malformed.ToString(), StringComparison.Ordinal);
    }
}
