using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Cache;

namespace Farm.Coordinator.Tests;

/// <summary>
/// The config of an exported build cache (docs/architecture.md, "Build caches in registries"): what another farm reads
/// back, and what it refuses to believe.
/// </summary>
public sealed class BuildCacheArtifactTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    private static string Key(char c) => "sha256:" + new string(c, 64);

    private static LayerRef Layer(char c) => new("sha256:" + new string(c, 64), "sha256:" + new string('e', 64), "application/vnd.oci.image.layer.v1.tar+gzip", 42);

    [Fact]
    public void Entries_read_back_as_written_sorted_by_key_whatever_the_order_they_came_in()
    {
        ExportedCacheEntry[] entries =
        [
            new(Key('b'), Layer('1'), At),
            new(Key('a'), null, At.AddSeconds(1)),
            new(Key('c'), Layer('2'), At.AddSeconds(2)),
        ];

        var config = BuildCacheArtifact.SerializeConfig(entries);

        Assert.Equal(config, BuildCacheArtifact.SerializeConfig(entries.Reverse()));
        Assert.Equal(entries.OrderBy(e => e.Key, StringComparer.Ordinal), BuildCacheArtifact.ParseConfig(config));
        Assert.StartsWith("{\"v\":1,\"entries\":[{\"key\":\"" + Key('a') + "\",\"layer\":null,", Encoding.UTF8.GetString(config), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"v":2,"entries":[]}""")]
    [InlineData("""{"v":1}""")]
    [InlineData("""{"v":1,"entries":[{"key":"md5:abc","layer":null,"created":"2026-12-06T12:00:00Z"}]}""")]
    [InlineData("""{"v":1,"entries":[{"key":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","layer":{"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","diff_id":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","media_type":"text/plain","size":1},"created":"2026-12-06T12:00:00Z"}]}""")]
    [InlineData("""{"v":1,"entries":[{"key":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","layer":{"digest":"nope","diff_id":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","media_type":"application/vnd.oci.image.layer.v1.tar+gzip","size":1},"created":"2026-12-06T12:00:00Z"}]}""")]
    [InlineData("not json")]
    public void A_config_of_another_version_or_with_a_bad_key_or_layer_is_not_believed(string json)
    {
        Assert.Null(BuildCacheArtifact.ParseConfig(Encoding.UTF8.GetBytes(json)));
    }
}
