using Farm.Contracts;
using Farm.Oci.Images;

namespace Farm.Oci.Tests;

/// <summary>
/// <c>--cache-to</c> and <c>--cache-from</c> as buildx reads them (https://docs.docker.com/build/cache/backends/registry/):
/// the CSV form, the bare reference of <c>--cache-from</c>, the defaults, and what is refused.
/// </summary>
public sealed class CacheSpecTests
{
    [Fact]
    public void An_export_defaults_to_mode_min_and_a_reference_without_tag_to_latest()
    {
        var spec = CacheSpec.ParseExport("type=registry,ref=127.0.0.1:5100/team/cache");

        Assert.Equal("127.0.0.1:5100", spec.Reference.Registry);
        Assert.Equal("team/cache", spec.Reference.Repository);
        Assert.Equal("latest", spec.Reference.Tag);
        Assert.Equal(CacheExportMode.Min, spec.Mode);
        Assert.False(spec.IgnoreError);
        Assert.Equal("type=registry,ref=127.0.0.1:5100/team/cache:latest,mode=min", spec.Format(export: true));
    }

    [Fact]
    public void An_export_reads_mode_max_and_ignore_error_and_accepts_buildxs_layout_options()
    {
        var spec = CacheSpec.ParseExport("type=registry, ref=127.0.0.1:5100/team/cache:main, mode=MAX, ignore-error=true, oci-mediatypes=true, image-manifest=true");

        Assert.Equal("main", spec.Reference.Tag);
        Assert.Equal(CacheExportMode.Max, spec.Mode);
        Assert.True(spec.IgnoreError);
        Assert.Equal(spec, CacheSpec.ParseExport(spec.Format(export: true)));
    }

    [Theory]
    [InlineData("127.0.0.1:5100/team/cache:main")]
    [InlineData("type=registry,ref=127.0.0.1:5100/team/cache:main")]
    public void An_import_takes_the_csv_form_or_the_reference_alone(string value)
    {
        var spec = CacheSpec.ParseImport(value);

        Assert.Equal("127.0.0.1:5100/team/cache:main", spec.Reference.ToString());
        Assert.Equal("type=registry,ref=127.0.0.1:5100/team/cache:main", spec.Format(export: false));
    }

    [Theory]
    [InlineData("127.0.0.1:5100/team/cache:main", true, "names no type=")]
    [InlineData("ref=127.0.0.1:5100/team/cache:main", true, "type= is missing")]
    [InlineData("type=registry", true, "ref= is missing")]
    [InlineData("type=registry,ref=127.0.0.1:5100/team/cache,mode=all", true, "mode 'all' is neither min nor max")]
    [InlineData("type=registry,ref=127.0.0.1:5100/team/cache,ignore-error=maybe", true, "ignore-error must be true or false")]
    [InlineData("type=registry,ref=127.0.0.1:5100/Team Cache", false, "is not a reference")]
    [InlineData("type=registry,ref=127.0.0.1:5100/team/cache,mode=max", false, "'mode' is not an option of --cache-from")]
    [InlineData("type=registry,ref", false, "'ref' is not key=value")]
    [InlineData("", false, "it is empty")]
    public void A_malformed_value_is_FARM2260_naming_the_flag_and_what_is_wrong(string value, bool export, string reason)
    {
        var e = Assert.Throws<InvalidCacheOptionException>(() => export ? CacheSpec.ParseExport(value) : CacheSpec.ParseImport(value));

        Assert.Equal(FarmErrorCodes.InvalidCacheOption, e.Code);
        Assert.StartsWith($"FARM2260: {(export ? "--cache-to" : "--cache-from")} '{value}' is not valid: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("type=local,dest=/tmp/cache", true)]
    [InlineData("type=local,src=/tmp/cache", false)]
    [InlineData("type=gha", false)]
    [InlineData("type=inline", true)]
    [InlineData("type=s3,region=eu-west-1,bucket=b", true)]
    public void Another_backend_is_FARM2261_whatever_its_options(string value, bool export)
    {
        var e = Assert.Throws<UnsupportedCacheTypeException>(() => export ? CacheSpec.ParseExport(value) : CacheSpec.ParseImport(value));

        Assert.Equal(FarmErrorCodes.UnsupportedCacheType, e.Code);
        Assert.Contains("type=registry,ref=HOST/REPOSITORY:TAG", e.Message, StringComparison.Ordinal);
    }
}
