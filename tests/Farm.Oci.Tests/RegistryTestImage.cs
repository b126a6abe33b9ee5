using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Oci.Tests;

/// <summary>A blob and its descriptor, held in memory.</summary>
internal sealed record TestBlob(Descriptor Descriptor, byte[] Content)
{
    public static TestBlob Of(byte[] content, string mediaType) =>
        new(new Descriptor { MediaType = mediaType, Digest = Digest.Sha256(content), Size = content.Length }, content);

    public MemoryStream Open() => new(Content, writable: false);
}

/// <summary>
/// A tiny image made by hand: gzip layers written with System.Formats.Tar (not Farm's layer writer, so these
/// tests do not depend on it), a config with matching diff_ids, and an OCI manifest.
/// </summary>
internal sealed record RegistryTestImage(ImageManifest Manifest, byte[] ManifestBytes, TestBlob Config, IReadOnlyList<TestBlob> Layers)
{
    public Digest Digest => Digest.Sha256(ManifestBytes);

    public Descriptor ManifestDescriptor => new() { MediaType = MediaTypes.OciManifest, Digest = Digest, Size = ManifestBytes.Length };

    public IEnumerable<TestBlob> Blobs => Layers.Append(Config);

    public static RegistryTestImage Create(string seed, int layers = 2)
    {
        var config = ImageConfig.CreateEmpty();
        config.Cmd = ["/hello"];
        var layerBlobs = new List<TestBlob>();
        for (var i = 0; i < layers; i++)
        {
            var (blob, diffId) = Layer(new Dictionary<string, string>
            {
                [$"layer{i}/seed.txt"] = $"{seed} layer {i}\n",
                [$"hello{i}"] = $"#!/bin/sh\necho hello {i}\n",
            });
            layerBlobs.Add(blob);
            config.AddLayer(diffId, new HistoryEntry { CreatedBy = $"test layer {i}", Created = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        }

        var configBlob = TestBlob.Of(config.ToBytes(), MediaTypes.OciConfig);
        var manifest = new ImageManifest { Config = configBlob.Descriptor, Layers = [.. layerBlobs.Select(l => l.Descriptor)] };
        return new RegistryTestImage(manifest, OciJson.Serialize(manifest), configBlob, layerBlobs);
    }

    /// <summary>A gzip layer holding <paramref name="files"/>, and its diff_id.</summary>
    public static (TestBlob Blob, Digest DiffId) Layer(IReadOnlyDictionary<string, string> files)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            var time = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
            foreach (var dir in files.Keys.Select(Path.GetDirectoryName).OfType<string>().Where(d => d.Length > 0).Distinct())
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir + "/") { ModificationTime = time, Mode = (UnixFileMode)0b111_101_101 });
            }

            foreach (var (path, text) in files)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, path)
                {
                    ModificationTime = time,
                    Mode = (UnixFileMode)0b111_101_101,
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)),
                };
                writer.WriteEntry(entry);
            }
        }

        var diffId = Digest.Sha256(tar.ToArray());
        using var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(tar.ToArray());
        }

        return (TestBlob.Of(gz.ToArray(), MediaTypes.OciLayerGzip), diffId);
    }

    public async Task PushAsync(RegistryClient client, string repository, string tag)
    {
        foreach (var blob in Blobs)
        {
            using var stream = blob.Open();
            await client.PushBlobAsync(repository, blob.Descriptor, stream, mountFrom: null, CancellationToken.None);
        }

        await client.PushManifestAsync(repository, tag, ManifestBytes, MediaTypes.OciManifest, CancellationToken.None);
    }

    public async Task WriteToAsync(OciLayoutStore layout, string tag)
    {
        foreach (var blob in Blobs)
        {
            using var stream = blob.Open();
            await layout.PutAsync(blob.Descriptor, stream, CancellationToken.None);
        }

        var descriptor = await layout.PutBytesAsync(ManifestBytes, MediaTypes.OciManifest, CancellationToken.None);
        await layout.TagAsync(tag, descriptor, CancellationToken.None);
    }
}

/// <summary>Clients for the test registries, trusting the test CA through its certs.d directory.</summary>
internal static class TestClients
{
    public static RegistryClient For(string registry, ICredentialProvider? credentials = null, RegistryClientOptions? options = null) =>
        new(registry, options ?? new RegistryClientOptions { CertsDirectory = TestRegistries.CertsDirectory }, credentials);

    public static ICredentialProvider FarmUser(string registry) =>
        StaticCredentialProvider.For(registry, new RegistryCredential { Username = TestRegistries.BasicUser, Password = TestRegistries.BasicPassword });

    /// <summary>A repository name no other test uses.</summary>
    public static string UniqueRepository(string prefix) => $"farm/{prefix}-{Guid.NewGuid():N}"[..Math.Min(40, prefix.Length + 38)];

    public static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer);
            return buffer.ToArray();
        }
    }
}
