using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Ignore;
using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Oci.Stores;
using Farm.Testing;

namespace Farm.Coordinator.Tests;

/// <summary>What a submitter does before submitting: a busybox base image in the test registry, a context tar and its index in the cache store.</summary>
public sealed class SubmitContext : IDisposable
{
    /// <summary>
    /// The stages of <see cref="TwoStageDockerfile"/> without its image configuration: a stage writing <c>/out</c>, then
    /// one copying it and the context's <c>hello.txt</c>; ends with a newline, for more instructions after it.
    /// </summary>
    public const string TwoStages = """
        ARG BASE
        FROM ${BASE} AS build
        RUN echo built > /out
        FROM ${BASE}
        COPY --from=build /out /out
        COPY hello.txt /hello.txt

        """;

    public const string TwoStageDockerfile = TwoStages + """CMD ["cat","/hello.txt"]""";

    private readonly string _work = Directory.CreateTempSubdirectory("farm-submit-").FullName;
    private IBlobStore? _store;

    private SubmitContext(BlobStoreLocator stores) => Stores = stores;

    public BlobStoreLocator Stores { get; }

    public string Namespace { get; } = $"test-{Guid.NewGuid():N}";

    public string BaseImage { get; private set; } = null!;

    public string ContextDigest { get; private set; } = null!;

    public string ContextIndexDigest { get; private set; } = null!;

    /// <summary>The directory of the context <see cref="ContextDigest"/> was packed from (its one file is <c>hello.txt</c>).</summary>
    public string ContextDirectory { get; private set; } = null!;

    /// <param name="hello">The text of the context's <c>hello.txt</c>.</param>
    public static async Task<SubmitContext> CreateAsync(string storeAddress, LayerRef baseLayer, string hello = "hello from a submission\n")
    {
        var context = new SubmitContext(new BlobStoreLocator(credentials: new DockerConfig(Path.Combine(Path.GetTempPath(), $"farm-submit-{Guid.NewGuid():N}", "config.json"))));
        var store = await context.Stores.OpenAsync(storeAddress, CancellationToken.None);
        context.BaseImage = $"{TestRegistries.Anonymous}/{context.Namespace}/busybox:1";
        await PushBusyboxAsync(context.Stores, store, baseLayer, context.BaseImage);

        context._store = store;
        (context.ContextDirectory, context.ContextDigest, context.ContextIndexDigest) = await context.UploadDirectoryAsync(new Dictionary<string, string> { ["hello.txt"] = hello });
        return context;
    }

    /// <summary>
    /// Pushes <paramref name="baseLayer"/> (busybox) as the one layer of an image with a PATH to <paramref name="reference"/>,
    /// its blobs also in <paramref name="store"/>: the base image the tests' Dockerfiles build from.
    /// </summary>
    public static async Task PushBusyboxAsync(BlobStoreLocator stores, IBlobStore store, LayerRef baseLayer, string reference)
    {
        ArgumentNullException.ThrowIfNull(stores);
        var busybox = new ImageAssembler().Assemble(new AssemblyRequest
        {
            Base = Coordinator.Assembly.BaseImage.Scratch(),
            Steps = [new AssemblyStep { CreatedBy = "busybox-static", IsLayerStep = true, Layer = baseLayer }],
            Config = new StageImageConfig { Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
            ConfigIncludesBase = false,
            Created = DateTimeOffset.UnixEpoch,
        });
        await new ImagePusher(stores.ClientFor).PushAsync(busybox, [reference], [store], null, CancellationToken.None);
    }

    /// <summary>
    /// Writes <paramref name="files"/> (relative path to text) into a fresh context directory, packs it and uploads
    /// the tar and its index to the cache store, as <c>farm build</c> does; returns their digests.
    /// </summary>
    public async Task<(string ContextDigest, string ContextIndexDigest)> UploadAsync(IReadOnlyDictionary<string, string> files)
    {
        var (_, contextDigest, contextIndexDigest) = await UploadDirectoryAsync(files);
        return (contextDigest, contextIndexDigest);
    }

    /// <summary>The SubmitBuild JSON body (camelCase) for <paramref name="dockerfile"/> (the two-stage one unless given), pushed to <paramref name="tag"/>.</summary>
    public JsonObject SubmitJson(string tag, Guid? buildId = null, string dockerfile = TwoStageDockerfile)
    {
        var json = new JsonObject
        {
            ["dockerfile"] = dockerfile,
            ["contextDigest"] = ContextDigest,
            ["contextIndexDigest"] = ContextIndexDigest,
            ["buildArgs"] = new JsonObject { ["BASE"] = BaseImage },
            ["tags"] = new JsonArray(tag),
            ["push"] = true,
        };
        if (buildId is { } id)
        {
            json["buildId"] = id.ToString();
        }

        return json;
    }

    public string Tag(string name) => $"{TestRegistries.Anonymous}/{Namespace}/{name}";

    public static async Task<string> RegistryDigestAsync(string reference) =>
        (string)JsonNode.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{reference}"))!["Digest"]!;

    private async Task<(string Directory, string ContextDigest, string ContextIndexDigest)> UploadDirectoryAsync(IReadOnlyDictionary<string, string> files)
    {
        var store = _store ?? throw new InvalidOperationException("The context is not initialised.");
        var dir = Directory.CreateDirectory(Path.Combine(_work, "ctx-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        foreach (var (path, text) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dir, path))!);
            await File.WriteAllTextAsync(Path.Combine(dir, path), text);
        }

        var (tar, index) = await BuildContextPacker.PackAndStoreAsync(dir, PatternMatcher.Empty, store, CancellationToken.None);
        return (dir, tar.Digest.ToString(), index.Digest.ToString());
    }

    public void Dispose()
    {
        Stores.Dispose();
        Directory.Delete(_work, recursive: true);
    }
}
