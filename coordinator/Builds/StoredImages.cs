using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Stores;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Named contexts whose image the client put in the cache store (<see cref="NamedContext.StoredImage"/>: an
/// <c>oci-layout://</c> directory of the client's machine): the reference the build graph names them by.
/// </summary>
internal static class StoredImageContexts
{
    /// <summary>A registry no one can reach: the reference only says where the image came from, its digest pins it.</summary>
    public const string Registry = "oci-layout.invalid";

    /// <summary><c>oci-layout.invalid/NAME@DIGEST</c>, NAME made a valid repository name.</summary>
    public static string Reference(NamedContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var name = new string([.. context.Name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]).Trim('.', '_', '-');
        return $"{Registry}/{(name.Length == 0 ? "context" : name)}@{context.StoredImage}";
    }
}

/// <summary>FARM4370: a named context's image in the cache store is missing, not what its digest says, or not proven to be the submitter's.</summary>
public sealed class StoredImageUnavailableException(string name, string digest, string reason, Exception? inner = null)
    : FarmException(
        FarmErrorCodes.StoredImageUnavailable,
        $"The named context '{name}' (oci-layout://, image {digest} in the farm's cache store) cannot be used: {reason}. Give the build the oci-layout:// directory again (farm build --farm or farm submit upload its blobs with proof of their content); an image another build uploaded is not readable by naming its digest.",
        inner)
{
    public string Name { get; } = name;
}

/// <summary>Resolution of images the client put in the cache store.</summary>
internal sealed partial class BaseImageResolver
{
    /// <summary>Largest index, manifest or config read into memory (the OCI distribution spec's manifest limit is 4 MiB).</summary>
    private const long MaxDocumentBytes = 4 << 20;

    /// <summary>
    /// Pins a <see cref="NamedContext.StoredImage"/> as a <c>docker-image://</c> context pinned by digest is pinned, reading
    /// its index, manifest, config and layers from <paramref name="cacheStore"/> instead of a registry: the manifest for
    /// <paramref name="platform"/> when the digest is of an index. Every blob must come with the submission's proof of
    /// its content: the store is shared by every tenant and content-addressed, so a digest alone proves nothing.
    /// </summary>
    /// <exception cref="StoredImageUnavailableException">A blob is missing, does not match its digest or its proof, or no manifest is for the platform (FARM4370).</exception>
    public async Task<ResolvedImage> ResolveStoredAsync(Guid buildId, string reference, NamedContext context, Platform platform, IBlobStore cacheStore, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(platform);
        ArgumentNullException.ThrowIfNull(cacheStore);
        var top = Digest.Parse(context.StoredImage!);
        var proofs = context.StoredImageProofs ?? new Dictionary<string, string>();
        StoredImageUnavailableException Fail(string reason, Exception? inner = null) => new(context.Name, top.ToString(), reason, inner);
        try
        {
            var digest = top;
            var bytes = await ReadProvenAsync(buildId, cacheStore, digest, proofs, Fail, cancellationToken).ConfigureAwait(false);
            if (IsIndex(bytes))
            {
                var entry = OciJson.ParseIndex(bytes).FindManifest(platform)
                    ?? throw Fail($"its index has no manifest for {platform}");
                digest = entry.Digest;
                bytes = await ReadProvenAsync(buildId, cacheStore, digest, proofs, Fail, cancellationToken).ConfigureAwait(false);
            }

            var manifest = OciJson.ParseManifest(bytes);
            var config = ImageConfig.Parse(await ReadProvenAsync(buildId, cacheStore, manifest.Config.Digest, proofs, Fail, cancellationToken).ConfigureAwait(false));
            foreach (var layer in manifest.Layers)
            {
                // Layers are read through once here: the workers fetch them from this store as any layer.
                var stream = await OpenAsync(cacheStore, layer.Digest, Fail, cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    var (actual, proof) = await PossessionProof.ComputeAsync(buildId, stream, cancellationToken).ConfigureAwait(false);
                    Check(layer.Digest, actual, proof, proofs, Fail);
                }
            }

            return Resolved(buildId, reference, digest, manifest, config);
        }
        catch (Exception e) when (e is (FarmException and not StoredImageUnavailableException) or System.Text.Json.JsonException or FormatException or IOException)
        {
            throw Fail(e.Message, e);
        }
    }

    /// <summary>An index by its media type, or (the field being optional in an OCI index) by its <c>manifests</c>.</summary>
    private static bool IsIndex(byte[] json)
    {
        if (OciJson.PeekMediaType(json) is { } mediaType)
        {
            return mediaType is MediaTypes.OciIndex or MediaTypes.DockerManifestList;
        }

        using var document = System.Text.Json.JsonDocument.Parse(json);
        return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && document.RootElement.TryGetProperty("manifests", out _);
    }

    private static async Task<byte[]> ReadProvenAsync(Guid buildId, IBlobStore store, Digest digest, IReadOnlyDictionary<string, string> proofs, Func<string, Exception?, StoredImageUnavailableException> fail, CancellationToken cancellationToken)
    {
        if (await store.StatAsync(digest, cancellationToken).ConfigureAwait(false) is > MaxDocumentBytes)
        {
            throw fail($"the blob {digest} is larger than {MaxDocumentBytes} bytes, too large for an index, manifest or config", null);
        }

        var stream = await OpenAsync(store, digest, fail, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            var bytes = buffer.ToArray();
            Check(digest, Digest.Sha256(bytes), PossessionProof.Compute(buildId, bytes), proofs, fail);
            return bytes;
        }
    }

    private static async Task<Stream> OpenAsync(IBlobStore store, Digest digest, Func<string, Exception?, StoredImageUnavailableException> fail, CancellationToken cancellationToken)
    {
        try
        {
            return await store.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FarmException or HttpRequestException or IOException)
        {
            throw fail($"the blob {digest} is not in the cache store ({e.Message})", e);
        }
    }

    private static void Check(Digest expected, Digest actual, string proof, IReadOnlyDictionary<string, string> proofs, Func<string, Exception?, StoredImageUnavailableException> fail)
    {
        if (expected != actual)
        {
            throw fail($"the blob stored as {expected} has the digest {actual}", null);
        }

        if (!PossessionProof.Matches(proofs.GetValueOrDefault(expected.ToString()), proof))
        {
            throw fail($"the submission holds no valid proof of the content of the blob {expected}, so it may be another tenant's", null);
        }
    }
}
