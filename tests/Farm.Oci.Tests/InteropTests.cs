using System.Text.Json;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Oci.Tests;

/// <summary>What Farm writes is read by skopeo and umoci, and what they write is read by Farm, byte for byte.</summary>
public sealed class InteropTests : IAsyncLifetime, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-interop-").FullName;
    private readonly RegistryClient _client = TestClients.For(TestRegistries.Anonymous);

    private string Registry => TestRegistries.Anonymous;

    public Task InitializeAsync() => TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _client.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Skopeo_inspects_a_layout_farm_wrote()
    {
        var layout = Path.Combine(_dir, "layout");
        var image = RegistryTestImage.Create("skopeo");
        using (var store = await OciLayoutStore.OpenOrCreateAsync(layout, CancellationToken.None))
        {
            await image.WriteToAsync(store, "v1");
        }

        using var inspected = JsonDocument.Parse(await Tool.RunAsync("skopeo", "inspect", $"oci:{layout}:v1"));
        Assert.Equal(image.Digest.ToString(), inspected.RootElement.GetProperty("Digest").GetString());
        Assert.Equal(image.Layers.Select(l => l.Descriptor.Digest.ToString()), inspected.RootElement.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("amd64", inspected.RootElement.GetProperty("Architecture").GetString());
    }

    [Fact]
    public async Task Umoci_unpacks_a_layout_farm_wrote()
    {
        var layout = Path.Combine(_dir, "layout");
        var bundle = Path.Combine(_dir, "bundle");
        using (var store = await OciLayoutStore.OpenOrCreateAsync(layout, CancellationToken.None))
        {
            await RegistryTestImage.Create("umoci").WriteToAsync(store, "v1");
        }

        await Tool.RunAsync("umoci", "unpack", "--image", $"{layout}:v1", bundle);

        Assert.Equal("umoci layer 0\n", await File.ReadAllTextAsync(Path.Combine(bundle, "rootfs", "layer0", "seed.txt")));
        Assert.Equal("umoci layer 1\n", await File.ReadAllTextAsync(Path.Combine(bundle, "rootfs", "layer1", "seed.txt")));
        Assert.True(File.Exists(Path.Combine(bundle, "rootfs", "hello1")));
    }

    [Fact]
    public async Task Skopeo_copies_a_farm_layout_to_the_registry_and_farm_pulls_it_unchanged()
    {
        var layout = Path.Combine(_dir, "layout");
        var image = RegistryTestImage.Create("copy");
        using (var store = await OciLayoutStore.OpenOrCreateAsync(layout, CancellationToken.None))
        {
            await image.WriteToAsync(store, "v1");
        }

        var repo = TestClients.UniqueRepository("skopeo-copy");
        await Tool.RunAsync("skopeo", "copy", "--dest-tls-verify=false", $"oci:{layout}:v1", $"docker://{Registry}/{repo}:v1");

        var pulled = await _client.PullManifestAsync(ImageReference.Parse($"{Registry}/{repo}:v1"), CancellationToken.None);
        Assert.Equal(image.Digest, pulled.Digest);
    }

    [Fact]
    public async Task Skopeo_inspects_an_image_farm_pushed()
    {
        var repo = TestClients.UniqueRepository("farm-push");
        var image = RegistryTestImage.Create("pushed");
        await image.PushAsync(_client, repo, "v1");

        using var inspected = JsonDocument.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{Registry}/{repo}:v1"));
        Assert.Equal(image.Digest.ToString(), inspected.RootElement.GetProperty("Digest").GetString());
        Assert.Equal(image.Layers.Select(l => l.Descriptor.Digest.ToString()), inspected.RootElement.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));
        var raw = await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{Registry}/{repo}:v1");
        Assert.Equal(image.ManifestBytes, System.Text.Encoding.UTF8.GetBytes(raw.TrimEnd('\n')));
    }

    [Fact]
    public async Task Umoci_built_image_round_trips_through_farm_with_unchanged_digests()
    {
        // A two-layer image built by umoci from busybox, copied to the registry by skopeo.
        var umociLayout = Path.Combine(_dir, "umoci");
        var rootfsFiles = Path.Combine(_dir, "files");
        Directory.CreateDirectory(rootfsFiles);
        await File.WriteAllTextAsync(Path.Combine(rootfsFiles, "motd"), "built by umoci\n");
        await Tool.RunAsync("umoci", "init", "--layout", umociLayout);
        await Tool.RunAsync("umoci", "new", "--image", $"{umociLayout}:base");
        await Tool.RunAsync("umoci", "insert", "--image", $"{umociLayout}:base", "/bin/busybox", "/bin/busybox");
        await Tool.RunAsync("umoci", "insert", "--image", $"{umociLayout}:base", Path.Combine(rootfsFiles, "motd"), "/etc/motd");
        var source = TestClients.UniqueRepository("rt-src");
        await Tool.RunAsync("skopeo", "copy", "--dest-tls-verify=false", $"oci:{umociLayout}:base", $"docker://{Registry}/{source}:base");
        var sourceRaw = await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{Registry}/{source}:base");

        var pulled = await _client.PullManifestAsync(ImageReference.Parse($"{Registry}/{source}:base"), CancellationToken.None);
        Assert.Equal(2, pulled.Manifest.Layers.Count);
        var blobs = pulled.Manifest.Layers.Append(pulled.Manifest.Config).ToList();

        // Into a second repository by copying the bytes, into a third by mounting, then the manifest as served.
        var copied = TestClients.UniqueRepository("rt-copy");
        var mounted = TestClients.UniqueRepository("rt-mount");
        foreach (var blob in blobs)
        {
            var download = await _client.OpenBlobAsync(source, blob.Digest, blob.Size, CancellationToken.None);
            await using (download)
            {
                Assert.Equal(BlobOutcome.Uploaded, await _client.PushBlobAsync(copied, blob, download, mountFrom: null, CancellationToken.None));
            }

            using var unused = new MemoryStream();
            Assert.Equal(BlobOutcome.Mounted, await _client.PushBlobAsync(mounted, blob, unused, mountFrom: source, CancellationToken.None));
        }

        await _client.PushManifestAsync(copied, "copied", pulled.Raw.Content, pulled.Raw.MediaType, CancellationToken.None);
        await _client.PushManifestAsync(mounted, "mounted", pulled.Raw.Content, pulled.Raw.MediaType, CancellationToken.None);

        foreach (var target in new[] { $"{copied}:copied", $"{mounted}:mounted" })
        {
            var raw = await Tool.RunAsync("skopeo", "inspect", "--raw", "--tls-verify=false", $"docker://{Registry}/{target}");
            Assert.Equal(sourceRaw, raw);
            using var inspected = JsonDocument.Parse(await Tool.RunAsync("skopeo", "inspect", "--tls-verify=false", $"docker://{Registry}/{target}"));
            Assert.Equal(pulled.Digest.ToString(), inspected.RootElement.GetProperty("Digest").GetString());
            Assert.Equal(pulled.Manifest.Layers.Select(l => l.Digest.ToString()), inspected.RootElement.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));
        }

        // And down into a Farm layout, which umoci unpacks to the files it inserted.
        var farmLayout = Path.Combine(_dir, "farm");
        using (var store = await OciLayoutStore.OpenOrCreateAsync(farmLayout, CancellationToken.None))
        {
            foreach (var blob in blobs)
            {
                var download = await _client.OpenBlobAsync(copied, blob.Digest, blob.Size, CancellationToken.None);
                await using (download)
                {
                    await store.PutAsync(blob, download, CancellationToken.None);
                }
            }

            var manifest = await store.PutBytesAsync(pulled.Raw.Content, pulled.Raw.MediaType, CancellationToken.None);
            Assert.Equal(pulled.Digest, manifest.Digest);
            await store.TagAsync("pulled", manifest, CancellationToken.None);
        }

        var bundle = Path.Combine(_dir, "bundle");
        await Tool.RunAsync("umoci", "unpack", "--image", $"{farmLayout}:pulled", bundle);
        Assert.Equal("built by umoci\n", await File.ReadAllTextAsync(Path.Combine(bundle, "rootfs", "etc", "motd")));
        Assert.Equal(new FileInfo("/bin/busybox").Length, new FileInfo(Path.Combine(bundle, "rootfs", "bin", "busybox")).Length);
    }
}
