using System.Security.Cryptography;
using System.Text;
using Farm.Cli.Local;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.Registry;
using Farm.Oci.Stores;

namespace Farm.Cli.Build;

/// <summary>
/// <c>--build-context NAME=oci-layout://PATH[@sha256:DIGEST|:TAG]</c> (buildx's form): the image of an OCI image layout
/// directory as a named context, for <c>FROM NAME</c> and <c>COPY --from=NAME</c>. The local farm reads base images
/// from its image store before any registry, so the image is loaded there (blobs verified) under a name of this path
/// and selector, and the context becomes that image (as <c>docker-image://</c>): the build pins its manifest digest as
/// any base image's. A remote farm cannot read this machine's directory: for <c>--farm</c> and <c>farm submit</c> the
/// image is put in the farm's cache store instead and named there by digest (<see cref="UploadAsync"/>).
/// </summary>
internal static class OciLayoutContexts
{
    /// <summary>The registry part of the names layouts are loaded under: never a registry anyone can reach.</summary>
    public const string NamePrefix = "oci-layout.invalid/";

    /// <summary><paramref name="settings"/> with every oci-layout context loaded and named as an image context.</summary>
    /// <exception cref="NamedContextException">A remote farm, or a directory that is not a usable layout (FARM1221).</exception>
    public static async Task<BuildSettings> LoadAsync(BuildSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var layouts = settings.NamedContexts.Where(c => c.Kind == NamedContextKind.OciLayout).ToList();
        if (layouts.Count == 0)
        {
            return settings;
        }

        if (settings.FarmUrl is not null)
        {
            // A remote farm cannot read this machine's directory: the image is uploaded to its cache store (UploadAsync).
            return settings;
        }

        using var store = await LocalImageStore.OpenAsync(new LocalDaemon().StateDirectory, cancellationToken).ConfigureAwait(false);
        var contexts = new List<NamedContextSpec>();
        foreach (var context in settings.NamedContexts)
        {
            if (context.Kind != NamedContextKind.OciLayout)
            {
                contexts.Add(context);
                continue;
            }

            var path = Path.GetFullPath(context.Value);
            var name = NamePrefix + Sanitize(context.Name) + ":" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(path + "@" + context.Select)))[..16];
            try
            {
                await store.LoadLayoutAsync(path, context.Select, name, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidImageArchiveException or IOException or UnauthorizedAccessException or Farm.Oci.OciLayoutException or Farm.Oci.DigestMismatchException)
            {
                throw new NamedContextException(context.Name, $"oci-layout://{context.Value}{(context.Select is null ? string.Empty : "@" + context.Select)}: {e.Message}");
            }

            contexts.Add(new NamedContextSpec(context.Name, NamedContextKind.Image, name, null));
        }

        var options = settings.Options ?? new SubmitBuildOptions();
        return settings with
        {
            NamedContexts = contexts,
            Options = options with
            {
                NamedContexts = [.. contexts.Where(c => c.Kind == NamedContextKind.Image).Select(c => new NamedContext { Name = c.Name, Image = c.Value })],
            },
        };
    }

    /// <summary>
    /// Puts the image of an oci-layout context in a remote farm's cache store (the repository <paramref name="repository"/>
    /// of <paramref name="client"/>'s registry) and names it there: its manifest (or index), configs and layers, each
    /// verified against its digest as it is read, uploaded only when the store lacks it, and proven with
    /// <see cref="PossessionProof"/> for <paramref name="buildId"/>. From an index, the manifests of
    /// <paramref name="platforms"/> (the build's; linux/amd64 when none) are taken.
    /// </summary>
    /// <exception cref="NamedContextException">Not a usable layout, no such image, a blob that does not match its digest, or no manifest for a platform (FARM1221).</exception>
    public static async Task<NamedContext> UploadAsync(NamedContextSpec context, Guid buildId, IReadOnlyList<string> platforms, RegistryClient client, string repository, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(client);
        var path = Path.GetFullPath(context.Value);
        var shown = $"oci-layout://{context.Value}{(context.Select is null ? string.Empty : "@" + context.Select)}";
        if (!File.Exists(Path.Combine(path, "index.json")) || !File.Exists(Path.Combine(path, "oci-layout")))
        {
            throw new NamedContextException(context.Name, $"{shown}: it is not an OCI image layout (no index.json and oci-layout file); write one with skopeo copy ... oci:DIR:TAG or farm build --output type=oci");
        }

        try
        {
            using var layout = await OciLayoutStore.OpenOrCreateAsync(path, cancellationToken).ConfigureAwait(false);
            var entries = (await layout.ReadIndexAsync(cancellationToken).ConfigureAwait(false)).Manifests;
            var chosen = context.Select is null
                ? (entries.Count == 1 ? entries[0] : throw new NamedContextException(context.Name, $"{shown}: it holds {entries.Count} images; name one with @sha256:DIGEST or :TAG"))
                : entries.FirstOrDefault(e => e.Digest.ToString() == context.Select || RefName(e) == context.Select)
                    ?? throw new NamedContextException(context.Name, $"{shown}: no image of its index.json has the digest or tag '{context.Select}' (it has {string.Join(", ", entries.Select(e => RefName(e) ?? e.Digest.ToString()))})");
            var proofs = new Dictionary<string, string>(StringComparer.Ordinal);
            var top = await PutDocumentAsync(layout, chosen, buildId, client, repository, proofs, cancellationToken).ConfigureAwait(false);
            var manifests = new List<Descriptor>();
            if (chosen.MediaType is MediaTypes.OciIndex or MediaTypes.DockerManifestList)
            {
                var index = OciJson.ParseIndex(top);
                foreach (var platform in (platforms.Count == 0 ? [FarmPlatforms.Default] : platforms).Select(p => Platform.TryParse(p) ?? Platform.LinuxAmd64).Distinct())
                {
                    manifests.Add(index.FindManifest(platform)
                        ?? throw new NamedContextException(context.Name, $"{shown}: its index has no image for {platform} (it has {string.Join(", ", index.Manifests.Select(m => m.Platform?.ToString() ?? "?"))})"));
                }
            }
            else
            {
                manifests.Add(chosen);
            }

            foreach (var descriptor in manifests.Distinct())
            {
                var manifest = descriptor == chosen ? OciJson.ParseManifest(top) : OciJson.ParseManifest(await PutDocumentAsync(layout, descriptor, buildId, client, repository, proofs, cancellationToken).ConfigureAwait(false));
                await PutDocumentAsync(layout, manifest.Config, buildId, client, repository, proofs, cancellationToken).ConfigureAwait(false);
                foreach (var layer in manifest.Layers.Where(l => !proofs.ContainsKey(l.Digest.ToString())))
                {
                    string proof;
                    var stream = await layout.OpenVerifiedAsync(layer, cancellationToken).ConfigureAwait(false);
                    await using (stream.ConfigureAwait(false))
                    {
                        (_, proof) = await PossessionProof.ComputeAsync(buildId, stream, cancellationToken).ConfigureAwait(false);
                    }

                    // Read again to upload only when the store lacks it: most layers of a rebuild are there already.
                    if (await client.StatBlobAsync(repository, layer.Digest, cancellationToken).ConfigureAwait(false) is null)
                    {
                        var upload = await layout.OpenVerifiedAsync(layer, cancellationToken).ConfigureAwait(false);
                        await using (upload.ConfigureAwait(false))
                        {
                            await client.PushBlobAsync(repository, layer, upload, mountFrom: null, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    proofs[layer.Digest.ToString()] = proof;
                }
            }

            return new NamedContext { Name = context.Name, StoredImage = chosen.Digest.ToString(), StoredImageProofs = proofs };
        }
        catch (Exception e) when (e is InvalidImageArchiveException or IOException or UnauthorizedAccessException or Farm.Oci.OciLayoutException or Farm.Oci.DigestMismatchException or System.Text.Json.JsonException or BlobNotFoundException)
        {
            throw new NamedContextException(context.Name, $"{shown}: {e.Message}");
        }
    }

    /// <summary>Reads a small blob (index, manifest, config) of the layout, verified, and uploads it unless the store has it.</summary>
    private static async Task<byte[]> PutDocumentAsync(OciLayoutStore layout, Descriptor descriptor, Guid buildId, RegistryClient client, string repository, Dictionary<string, string> proofs, CancellationToken cancellationToken)
    {
        var bytes = await layout.ReadBytesAsync(descriptor, cancellationToken).ConfigureAwait(false);
        if (await client.StatBlobAsync(repository, descriptor.Digest, cancellationToken).ConfigureAwait(false) is null)
        {
            using var content = new MemoryStream(bytes, writable: false);
            await client.PushBlobAsync(repository, descriptor with { Size = bytes.Length }, content, mountFrom: null, cancellationToken).ConfigureAwait(false);
        }

        proofs[descriptor.Digest.ToString()] = PossessionProof.Compute(buildId, bytes);
        return bytes;
    }

    private static string? RefName(Descriptor descriptor) =>
        descriptor.Annotations is { } a && a.TryGetValue(OciLayoutStore.RefNameAnnotation, out var name) ? name : null;

    private static string Sanitize(string name)
    {
        var text = new string([.. name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]).Trim('.', '_', '-');
        return text.Length == 0 ? "context" : text;
    }
}
