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

    [Fact]
    public void A_submission_with_every_optional_field_left_out_is_accepted()
    {
        var submit = JsonSerializer.Deserialize<SubmitBuild>(Valid, Http)!;

        SubmissionValidation.Validate(submit, "oci-layout:/store");
    }
}
