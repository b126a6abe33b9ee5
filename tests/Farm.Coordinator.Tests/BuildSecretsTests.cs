using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Auth;

namespace Farm.Coordinator.Tests;

/// <summary>The coordinator's memory of passed secrets and the header they come in.</summary>
public sealed class BuildSecretsTests
{
    [Fact]
    public void A_build_resumed_by_a_coordinator_that_never_held_its_secrets_fails_with_FARM4310_naming_them_not_their_values()
    {
        var id = Guid.NewGuid();
        var submission = new SubmitBuild { BuildId = id, Dockerfile = "FROM scratch\n", SecretIds = ["npmrc"], SshIds = ["default"] };
        var accepted = new BuildSecrets();
        accepted.Hold(id, new BuildSecretValues { Secrets = new Dictionary<string, byte[]> { ["npmrc"] = "v4lue"u8.ToArray() }, SshAgents = new Dictionary<string, string> { ["default"] = "/run/agent.sock" } });

        accepted.Check(submission);
        var error = Assert.Throws<BuildSecretsLostException>(() => new BuildSecrets().Check(submission));

        Assert.Equal(FarmErrorCodes.BuildSecretsLost, error.Code);
        Assert.Contains("npmrc, default", error.Message, StringComparison.Ordinal);
        Assert.Contains("Submit the build again", error.Message, StringComparison.Ordinal);
        accepted.Release(id);
        Assert.Same(BuildSecretValues.None, accepted.Values(id));
    }

    [Fact]
    public void The_header_round_trips_and_a_bad_one_is_refused_without_repeating_it()
    {
        var values = new BuildSecretValues { Secrets = new Dictionary<string, byte[]> { ["tok"] = [0, 1, 255] }, SshAgents = new Dictionary<string, string> { ["default"] = "/tmp/a.sock" } };

        var decoded = BuildSecretsHeader.TryDecode(BuildSecretsHeader.Encode(values), out var problem);
        var bad = BuildSecretsHeader.TryDecode(Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"secrets\":{\"../x\":\"c2VjcmV0LXZhbHVl\"}}")), out var badProblem);

        Assert.Null(problem);
        Assert.Equal(new byte[] { 0, 1, 255 }, decoded!.Secrets["tok"]);
        Assert.Equal("/tmp/a.sock", decoded.SshAgents["default"]);
        Assert.Null(bad);
        Assert.DoesNotContain("c2VjcmV0LXZhbHVl", badProblem, StringComparison.Ordinal);
        Assert.DoesNotContain("../x", badProblem, StringComparison.Ordinal);
        Assert.Equal("BuildSecretValues { Secrets = [tok], SshAgents = [default] }", values.ToString());
    }

    [Fact]
    public void A_job_credential_opens_the_ids_it_was_granted_of_its_own_build_until_its_lease_or_the_build_ends()
    {
        var (a, b) = (Guid.NewGuid(), Guid.NewGuid());
        var secrets = new BuildSecrets();
        secrets.Hold(a, new BuildSecretValues { Secrets = new Dictionary<string, byte[]> { ["tok"] = "a-value"u8.ToArray(), ["other"] = "o"u8.ToArray() }, SshAgents = new Dictionary<string, string>() });
        secrets.Hold(b, new BuildSecretValues { Secrets = new Dictionary<string, byte[]> { ["tok"] = "b-value"u8.ToArray() }, SshAgents = new Dictionary<string, string>() });

        using var lease = secrets.Grant(a, ["tok", "missing"], "https://c:1/jobs/secrets/" + a)!;
        var leaseB = secrets.Grant(b, ["tok"], "https://c:1/jobs/secrets/" + b)!;

        Assert.Null(secrets.Grant(a, ["missing"], "https://c:1"));
        Assert.Equal(["tok"], secrets.Redeem(lease.Grant.Credential, a).Secrets.Keys);
        Assert.Equal("a-value"u8.ToArray(), secrets.Redeem(lease.Grant.Credential, a).Secrets["tok"]);
        Assert.Equal(FarmErrorCodes.JobCredentialRefused, Assert.Throws<JobCredentialRefusedException>(() => secrets.Redeem(lease.Grant.Credential, b)).Code);
        Assert.Throws<JobCredentialRefusedException>(() => secrets.Redeem(leaseB.Grant.Credential, a));
        Assert.Throws<JobCredentialRefusedException>(() => secrets.Redeem(string.Empty, a));
        Assert.DoesNotContain(lease.Grant.Credential, lease.Grant.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(lease.Grant.Credential, lease.ToString(), StringComparison.Ordinal);

        leaseB.Dispose();
        Assert.Throws<JobCredentialRefusedException>(() => secrets.Redeem(leaseB.Grant.Credential, b));
        secrets.Release(a);
        Assert.Throws<JobCredentialRefusedException>(() => secrets.Redeem(lease.Grant.Credential, a));
        Assert.Equal(0, secrets.GrantCount);
    }

    [Theory]
    [InlineData(null, null, "http://127.0.0.1:41234", "http://127.0.0.1:41234")]
    [InlineData(null, null, "https://0.0.0.0:8480", null)]
    [InlineData(null, "10.0.0.5", "https://0.0.0.0:8480", "https://10.0.0.5:8480")]
    [InlineData(null, "fd00::5", "http://[::]:8480", "http://[fd00::5]:8480")]
    [InlineData("https://coord-1.farm.internal:8480/", null, "https://0.0.0.0:8480", "https://coord-1.farm.internal:8480")]
    [InlineData(null, null, "http://unix:/run/farmd.sock", null)]
    public void Workers_are_told_the_configured_address_or_the_one_the_listener_bound(string? configured, string? advertised, string bound, string? expected)
    {
        var endpoint = new JobSecretsEndpoint(configured, advertised, () => [bound]);

        Assert.Equal(expected, endpoint.Url);
        if (expected is not null)
        {
            var id = Guid.NewGuid();
            Assert.Equal($"{expected}/jobs/secrets/{id}", JobSecretsEndpoint.PathFor(endpoint.Url!, id));
        }
    }
}
