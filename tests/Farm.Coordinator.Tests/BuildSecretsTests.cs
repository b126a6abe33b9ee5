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
}
