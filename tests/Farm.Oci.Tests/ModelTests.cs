using System.Text;
using System.Text.Json.Nodes;

namespace Farm.Oci.Tests;

public class DigestTests
{
    [Fact]
    public void A_sha256_digest_round_trips_and_hashes_content()
    {
        var digest = Digest.Sha256("hello"u8);
        Assert.Equal("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", digest.ToString());
        Assert.Equal(digest, Digest.Parse(digest.ToString()));
    }

    [Fact]
    public void A_sha512_digest_is_accepted()
    {
        var text = "sha512:" + new string('a', 128);
        Assert.Equal("sha512", Digest.Parse(text).Algorithm);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("abc", "no algorithm")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", "not supported")]
    [InlineData("sha256:abc", "64 hex")]
    [InlineData("sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", "lower-case")]
    public void An_invalid_digest_is_refused_with_the_reason(string text, string reason)
    {
        var e = Assert.Throws<InvalidDigestException>(() => Digest.Parse(text));
        Assert.StartsWith("FARM2001: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }
}

public class ManifestTests
{
    private const string ManifestJson = """
        {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
         "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
         "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32,"digest":"sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824","annotations":{"a":"b"}}],
         "x-future":{"kept":true}}
        """;

    [Fact]
    public void A_docker_manifest_is_read_and_unknown_fields_survive_a_rewrite()
    {
        var manifest = OciJson.ParseManifest(Encoding.UTF8.GetBytes(ManifestJson));
        Assert.True(manifest.IsDocker);
        Assert.Equal(32, manifest.Layers[0].Size);

        var written = JsonNode.Parse(OciJson.Serialize(manifest with { Annotations = new Dictionary<string, string> { ["k"] = "v" } }))!;
        Assert.True((bool)written["x-future"]!["kept"]!);
        Assert.Equal("v", (string?)written["annotations"]!["k"]);
        Assert.Equal("b", (string?)written["layers"]![0]!["annotations"]!["a"]);
    }

    [Fact]
    public void Converting_between_oci_and_docker_changes_every_media_type()
    {
        var docker = OciJson.ParseManifest(Encoding.UTF8.GetBytes(ManifestJson));
        var oci = docker.ToOci();
        Assert.Equal(MediaTypes.OciManifest, oci.MediaType);
        Assert.Equal(MediaTypes.OciConfig, oci.Config.MediaType);
        Assert.Equal(MediaTypes.OciLayerGzip, oci.Layers[0].MediaType);
        Assert.Equal(docker.Layers[0].Digest, oci.ToDocker().Layers[0].Digest);
        Assert.Equal(MediaTypes.DockerLayerGzip, oci.ToDocker().Layers[0].MediaType);
    }

    [Fact]
    public void A_zstd_layer_cannot_be_written_as_a_docker_manifest()
    {
        var manifest = new ImageManifest
        {
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Sha256("c"u8), Size = 1 },
            Layers = [new Descriptor { MediaType = MediaTypes.OciLayerZstd, Digest = Digest.Sha256("l"u8), Size = 1 }],
        };
        var e = Assert.Throws<InvalidManifestException>(() => manifest.ToDocker());
        Assert.Contains("gzip", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_index_yields_the_linux_amd64_manifest_and_never_an_attestation()
    {
        Descriptor Entry(string os, string arch, string content) => new()
        {
            MediaType = MediaTypes.OciManifest,
            Digest = Digest.Sha256(Encoding.UTF8.GetBytes(content)),
            Size = 1,
            Platform = new Platform { Os = os, Architecture = arch },
        };
        var index = new ImageIndex { Manifests = [Entry("unknown", "unknown", "att"), Entry("linux", "arm64", "arm"), Entry("linux", "amd64", "amd")] };
        Assert.Equal(Digest.Sha256("amd"u8), index.FindManifest(Platform.LinuxAmd64)!.Digest);
        Assert.Null(new ImageIndex { Manifests = [Entry("unknown", "unknown", "att")] }.FindManifest(Platform.LinuxAmd64));
    }
}

public class ImageConfigTests
{
    [Fact]
    public void Unknown_fields_of_a_config_survive_a_read_modify_write()
    {
        var config = ImageConfig.Parse("""
            {"architecture":"amd64","os":"linux","container_config":{"Hostname":"x"},
             "config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"ArgsEscaped":true},
             "rootfs":{"type":"layers","diff_ids":[]},"history":[]}
            """u8);
        config.SetEnv("A", "2");
        config.SetEnv("B", "3");
        config.Cmd = ["/bin/app"];
        config.SetLabel("org.example", "yes");
        config.AddExposedPort("80/tcp");
        config.AddLayer(Digest.Sha256("layer"u8), new HistoryEntry { CreatedBy = "RUN x" });
        config.AddHistory(new HistoryEntry { CreatedBy = "ENV B=3", EmptyLayer = true });

        var again = ImageConfig.Parse(config.ToBytes());
        Assert.Equal(["PATH=/bin", "A=2", "B=3"], again.Env);
        Assert.Equal(["/bin/app"], again.Cmd!);
        Assert.Equal("yes", again.Labels["org.example"]);
        Assert.Equal(["80/tcp"], again.ExposedPorts);
        Assert.Equal([Digest.Sha256("layer"u8)], again.DiffIds);
        Assert.Equal([false, true], again.History.Select(h => h.EmptyLayer));
        Assert.Equal("x", (string?)again.Root["container_config"]!["Hostname"]);
        Assert.True((bool)again.Config["ArgsEscaped"]!);
    }

    [Fact]
    public void A_clone_does_not_change_its_source()
    {
        var base_ = ImageConfig.CreateEmpty();
        var derived = base_.Clone();
        derived.SetEnv("X", "1");
        Assert.Empty(base_.Env);
        Assert.Equal("1", derived.GetEnv("X"));
    }
}
