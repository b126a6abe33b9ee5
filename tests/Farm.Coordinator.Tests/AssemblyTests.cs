using System.Text;
using System.Text.Json.Nodes;
using Farm.Oci.Images;
using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Dockerfile.Graph;
using Farm.Oci;

namespace Farm.Coordinator.Tests;

public sealed class AssemblyTests
{
    private static readonly DateTimeOffset Epoch = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private const string Dockerfile = """
        FROM busybox
        ARG MODE=fast
        ENV A=b
        WORKDIR /app
        RUN echo hi > /app/out
        COPY hello.txt /
        EXPOSE 80 443/udp
        LABEL org.example.team="build farm"
        HEALTHCHECK --interval=30s --timeout=3s --retries=4 CMD wget -q -O- http://localhost/
        CMD ["cat", "/hello.txt"]
        USER 1000
        MAINTAINER farm@example.com
        """;

    [Fact]
    public void Config_carries_the_stage_fields_and_BuildKit_history()
    {
        var image = new ImageAssembler().Assemble(Request());
        var config = JsonNode.Parse(image.ConfigBytes.Span)!.AsObject();
        var c = config["config"]!;

        Assert.Equal(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b"], Strings(c["Env"]));
        Assert.Equal(["cat", "/hello.txt"], Strings(c["Cmd"]));
        Assert.Equal("/app", (string?)c["WorkingDir"]);
        Assert.Equal("1000", (string?)c["User"]);
        Assert.Equal(["443/udp", "80/tcp"], c["ExposedPorts"]!.AsObject().Select(p => p.Key));
        Assert.Equal("build farm", (string?)c["Labels"]!["org.example.team"]);
        Assert.Equal(30_000_000_000L, (long)c["Healthcheck"]!["Interval"]!);
        Assert.Equal(3_000_000_000L, (long)c["Healthcheck"]!["Timeout"]!);
        Assert.Equal(4, (int)c["Healthcheck"]!["Retries"]!);
        Assert.Null(c["Healthcheck"]!["StartPeriod"]);
        Assert.Equal("farm@example.com", (string?)config["author"]);
        Assert.Equal("kept", (string?)config["x-unknown"]);

        var history = config["history"]!.AsArray().Select(h => ((string?)h!["created_by"], h["empty_layer"] is not null)).ToList();
        Assert.Equal(
            [
                ("base layer", false),
                ("ARG MODE=fast", true),
                ("ENV A=b", true),
                ("WORKDIR /app", true), // a layer step that produced no layer
                ("RUN |1 MODE=fast /bin/sh -c echo hi > /app/out # buildkit", false),
                ("COPY hello.txt / # buildkit", false),
                ("EXPOSE map[443/udp:{} 80/tcp:{}]", true),
                ("LABEL org.example.team=build farm", true),
                ("HEALTHCHECK --interval=30s --timeout=3s --retries=4 CMD wget -q -O- http://localhost/", true),
                ("CMD [\"cat\" \"/hello.txt\"]", true),
                ("USER 1000", true),
                ("MAINTAINER farm@example.com", true),
            ],
            history);
        Assert.Equal([BaseDiffId, RunLayer.DiffId, CopyLayer.DiffId], config["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!));
        Assert.Equal([BaseLayer.Digest.ToString(), RunLayer.Digest, CopyLayer.Digest], image.Manifest.Layers.Select(l => l.Digest.ToString()));
        Assert.Equal(MediaTypes.OciManifest, image.ManifestDescriptor.MediaType);
        Assert.Equal(MediaTypes.OciConfig, image.Manifest.Config.MediaType);
        Assert.All(image.Manifest.Layers, l => Assert.Equal(MediaTypes.OciLayerGzip, l.MediaType));
        Assert.Equal("2023-11-14T22:13:20Z", (string?)config["created"]);
        Assert.Equal(Digest.Sha256(image.ManifestBytes.Span), image.Digest);
    }

    [Fact]
    public void Same_inputs_give_the_same_digest_and_another_time_another()
    {
        var assembler = new ImageAssembler();
        var first = assembler.Assemble(Request());
        var second = assembler.Assemble(Request());
        var later = assembler.Assemble(Request() with { Created = Epoch.AddSeconds(1) });

        Assert.Equal(first.Digest, second.Digest);
        Assert.Equal(first.ConfigDescriptor.Digest, second.ConfigDescriptor.Digest);
        Assert.NotEqual(first.Digest, later.Digest);
    }

    [Fact]
    public void With_SOURCE_DATE_EPOCH_the_config_and_every_new_history_entry_have_that_time()
    {
        var config = JsonNode.Parse(new ImageAssembler().Assemble(Request()).ConfigBytes.Span)!;

        var history = config["history"]!.AsArray();
        Assert.Null(history[0]!["created"]); // the base's own entry keeps what it had
        Assert.All(history.Skip(1), h => Assert.Equal("2023-11-14T22:13:20Z", (string?)h!["created"]));
        Assert.Equal("2023-11-14T22:13:20Z", (string?)config["created"]);
    }

    [Fact]
    public void Without_SOURCE_DATE_EPOCH_steps_are_dated_by_their_layers_and_the_image_by_the_last_so_a_cached_rebuild_is_the_same_image()
    {
        // The RUN's layer built at 10:00, the COPY's at 10:05; the clock says 12:00.
        var run = new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero);
        var copy = run.AddMinutes(5);
        var request = Request() with
        {
            Created = null,
            Steps = [.. Request().Steps.Select(s => s.CreatedBy.StartsWith("RUN", StringComparison.Ordinal) ? s with { Created = run }
                : s.CreatedBy.StartsWith("COPY", StringComparison.Ordinal) ? s with { Created = copy } : s)],
        };
        var assembler = new ImageAssembler(new FixedTime(run.AddHours(2)));

        var image = assembler.Assemble(request);
        var config = JsonNode.Parse(image.ConfigBytes.Span)!;

        var dated = config["history"]!.AsArray().Skip(1).Select(h => ((string?)h!["created_by"], (string?)h["created"])).ToList();
        // ARG, ENV and WORKDIR (config-only here) come before the first layer and take its time; later ones the layer's before them.
        Assert.All(dated.TakeWhile(d => !d.Item1!.StartsWith("COPY", StringComparison.Ordinal)), d => Assert.Equal("2026-12-06T10:00:00Z", d.Item2));
        Assert.All(dated.SkipWhile(d => !d.Item1!.StartsWith("COPY", StringComparison.Ordinal)), d => Assert.Equal("2026-12-06T10:05:00Z", d.Item2));
        Assert.Equal("2026-12-06T10:05:00Z", (string?)config["created"]);
        // Rebuilt later from the cache (same layers, same build times): the same image.
        Assert.Equal(image.Digest, new ImageAssembler(new FixedTime(run.AddDays(3))).Assemble(request).Digest);
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    [Fact]
    public void Base_config_is_not_changed()
    {
        var request = Request();
        var before = request.Base.Config.ToBytes();
        _ = new ImageAssembler().Assemble(request);
        Assert.Equal(before, request.Base.Config.ToBytes());
    }

    [Fact]
    public void Build_labels_win_over_LABEL()
    {
        var image = new ImageAssembler().Assemble(Request() with
        {
            BuildLabels = new Dictionary<string, string> { ["org.example.team"] = "cli", ["a.first"] = "1" },
        });
        Assert.Equal(new Dictionary<string, string> { ["a.first"] = "1", ["org.example.team"] = "cli" }, image.Config.Labels);
        Assert.Equal(["a.first", "org.example.team"], image.Config.Config["Labels"]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public void Docker_format_uses_Docker_media_types_and_refuses_zstd()
    {
        var image = new ImageAssembler().Assemble(Request() with { Format = ImageFormat.Docker });
        Assert.Equal(MediaTypes.DockerManifest, image.ManifestDescriptor.MediaType);
        Assert.Equal(MediaTypes.DockerConfig, image.ConfigDescriptor.MediaType);
        Assert.All(image.Manifest.Layers, l => Assert.Equal(MediaTypes.DockerLayerGzip, l.MediaType));

        var zstd = Request() with
        {
            Format = ImageFormat.Docker,
            Steps = [new AssemblyStep { CreatedBy = "RUN x", IsLayerStep = true, Layer = RunLayer with { MediaType = MediaTypes.OciLayerZstd } }],
        };
        var e = Assert.Throws<UnsupportedLayerFormatException>(() => new ImageAssembler().Assemble(zstd));
        Assert.StartsWith("FARM4102", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Scratch_base_and_merge_mode()
    {
        var image = new ImageAssembler().Assemble(new AssemblyRequest
        {
            Base = BaseImage.Scratch(),
            Steps = [new AssemblyStep { CreatedBy = "COPY a / # buildkit", IsLayerStep = true, Layer = CopyLayer }],
            Config = new StageImageConfig { Env = ["PATH=/bin"], Entrypoint = ["/a"] },
            ConfigIncludesBase = false,
            Created = Epoch,
        });
        Assert.Equal("amd64", image.Config.Architecture);
        Assert.Equal(["PATH=/bin"], image.Config.Env);
        Assert.Equal(["/a"], image.Config.Entrypoint);
        Assert.Single(image.Manifest.Layers);
    }

    [Fact]
    public void Mismatched_base_and_layer_given_to_a_config_step_are_refused()
    {
        var broken = Request() with { Base = new BaseImage { Config = Base().Config, Layers = [] } };
        Assert.StartsWith("FARM4101", Assert.Throws<ImageAssemblyException>(() => new ImageAssembler().Assemble(broken)).Message, StringComparison.Ordinal);

        var misplaced = Request() with { Steps = [new AssemblyStep { CreatedBy = "ENV A=b", IsLayerStep = false, Layer = RunLayer }] };
        Assert.Throws<ImageAssemblyException>(() => new ImageAssembler().Assemble(misplaced));
    }

    [Theory]
    [InlineData("type=oci,dest=/tmp/o.tar", OutputType.Oci, "/tmp/o.tar", true)]
    [InlineData("type=oci,dest=/tmp/o,tar=false", OutputType.Oci, "/tmp/o", false)]
    [InlineData("type=docker,dest=img.tar,name=farm/app:1", OutputType.Docker, "img.tar", true)]
    [InlineData("type=local,dest=out", OutputType.Local, "out", true)]
    [InlineData("rootfs", OutputType.Local, "rootfs", true)]
    public void Output_values_parse(string value, OutputType type, string dest, bool tar)
    {
        var spec = OutputSpec.Parse(value);
        Assert.Equal((type, dest, tar), (spec.Type, spec.Destination, spec.Tar));
    }

    [Theory]
    [InlineData("type=registry,dest=x")]
    [InlineData("type=oci")]
    [InlineData("type=local,dest=x,tar=false")]
    [InlineData("dest=x")]
    public void Bad_output_values_are_refused(string value) =>
        Assert.StartsWith("FARM4120", Assert.Throws<InvalidOutputException>(() => OutputSpec.Parse(value)).Message, StringComparison.Ordinal);

    internal static readonly string BaseDiffId = "sha256:" + new string('1', 64);

    internal static readonly Descriptor BaseLayer = new() { MediaType = MediaTypes.DockerLayerGzip, Digest = Digest.Parse("sha256:" + new string('2', 64)), Size = 10 };

    internal static readonly LayerRef RunLayer = new("sha256:" + new string('3', 64), "sha256:" + new string('4', 64), MediaTypes.OciLayerGzip, 20);

    internal static readonly LayerRef CopyLayer = new("sha256:" + new string('5', 64), "sha256:" + new string('6', 64), MediaTypes.OciLayerGzip, 30);

    private static BaseImage Base()
    {
        var config = ImageConfig.CreateEmpty();
        config.Root["x-unknown"] = "kept";
        config.AddLayer(Digest.Parse(BaseDiffId), new HistoryEntry { CreatedBy = "base layer" });
        return new BaseImage { Config = config, Layers = [BaseLayer] };
    }

    private static AssemblyRequest Request()
    {
        var stage = BuildGraph.Create(Dockerfile).Target;
        var steps = stage.Steps.Select(s => AssemblyStep.From(s, s.Instruction switch
        {
            "RUN" => RunLayer,
            "COPY" => CopyLayer,
            _ => null,
        })).ToList();
        return new AssemblyRequest { Base = Base(), Steps = steps, Config = stage.Config, Created = Epoch };
    }

    private static string[] Strings(JsonNode? node) => [.. node!.AsArray().Select(n => (string)n!)];

    internal static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
