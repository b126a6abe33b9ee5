using System.Text.Json;
using Farm.Contracts;
using Farm.Coordinator.Builds;

namespace Farm.Coordinator.Tests;

/// <summary>Submissions the fuzzer found accepted with a null the build met later as an internal error (FARM4200).</summary>
public sealed class SubmissionValidationTests
{
    private const string Valid = """{"dockerfile":"FROM scratch","contextDigest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","contextIndexDigest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}""";

    // What POST /builds binds its body with.
    private static readonly JsonSerializerOptions Http = new Microsoft.AspNetCore.Http.Json.JsonOptions().SerializerOptions;

    [Theory]
    [InlineData("\"tags\":null", "tags")]
    [InlineData("\"tags\":[\"app:1\",null]", "tags")]
    [InlineData("\"labels\":null", "labels")]
    [InlineData("\"labels\":{\"org.example\":null}", "labels")]
    [InlineData("\"buildArgs\":null", "buildArgs")]
    [InlineData("\"buildArgs\":{\"VERSION\":null}", "buildArgs")]
    [InlineData("\"entitlements\":[\"network.host\",null]", "entitlements")]
    [InlineData("\"entitlements\":null", "entitlements")]
    [InlineData("\"dockerfilePath\":null", "dockerfilePath")]
    public void A_submission_with_null_in_a_field_is_refused_as_invalid_naming_the_field(string member, string field)
    {
        var submit = JsonSerializer.Deserialize<SubmitBuild>(Valid.Insert(1, member + ","), Http)!;

        var e = Assert.Throws<InvalidSubmissionException>(() => SubmissionValidation.Validate(submit, "oci-layout:/store"));

        Assert.Equal(FarmErrorCodes.InvalidSubmission, e.Code);
        Assert.Contains($"\"{field}\"", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"options\":{\"network\":\"bridge\"}", "options.network")]
    [InlineData("\"options\":{\"extraHosts\":[\"db.internal\"]}", "options.extraHosts")]
    [InlineData("\"options\":{\"extraHosts\":[\"db:not-an-ip\"]}", "options.extraHosts")]
    [InlineData("\"options\":{\"shmSizeBytes\":0}", "options.shmSizeBytes")]
    [InlineData("\"options\":{\"ulimits\":[{\"name\":\"speed\",\"soft\":1,\"hard\":1}]}", "options.ulimits")]
    [InlineData("\"options\":{\"ulimits\":[{\"name\":\"nofile\",\"soft\":2048,\"hard\":1024}]}", "options.ulimits")]
    [InlineData("\"options\":{\"namedContexts\":[{\"name\":\"x\"}]}", "options.namedContexts")]
    [InlineData("\"options\":{\"namedContexts\":[{\"name\":\"x\",\"contextDigest\":\"nope\"}]}", "options.namedContexts[x].contextDigest")]
    public void A_submission_with_malformed_build_options_is_refused_naming_the_field(string member, string field)
    {
        var submit = JsonSerializer.Deserialize<SubmitBuild>(Valid.Insert(1, member + ","), Http)!;

        var e = Assert.Throws<InvalidSubmissionException>(() => SubmissionValidation.Validate(submit, "oci-layout:/store"));

        Assert.Contains($"\"{field}\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_submission_with_well_formed_build_options_is_accepted()
    {
        var submit = JsonSerializer.Deserialize<SubmitBuild>(Valid.Insert(1, "\"options\":{\"network\":\"none\",\"extraHosts\":[\"db:10.0.0.5\",\"v6:::1\"],\"shmSizeBytes\":1048576,\"ulimits\":[{\"name\":\"nofile\",\"soft\":1024,\"hard\":2048}],\"namedContexts\":[{\"name\":\"base\",\"image\":\"busybox:1\"}]},"), Http)!;

        SubmissionValidation.Validate(submit, "oci-layout:/store");
    }

    [Fact]
    public void A_submission_with_every_optional_field_left_out_is_accepted()
    {
        var submit = JsonSerializer.Deserialize<SubmitBuild>(Valid, Http)!;

        SubmissionValidation.Validate(submit, "oci-layout:/store");
    }
}
