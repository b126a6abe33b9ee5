using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Oci.Registry;

/// <summary>A manifest or index as the registry served it: the exact bytes, their digest and media type.</summary>
public sealed record ManifestResponse
{
    public required string MediaType { get; init; }

    public required Digest Digest { get; init; }

    public required ReadOnlyMemory<byte> Content { get; init; }

    public Descriptor ToDescriptor() => new() { MediaType = MediaType, Digest = Digest, Size = Content.Length };
}

/// <summary>An image manifest resolved for one platform, with the index it was chosen from (if any).</summary>
public sealed record PulledImage
{
    public required ImageReference Reference { get; init; }

    public required ImageManifest Manifest { get; init; }

    /// <summary>The manifest's bytes as served; push these to keep the digest.</summary>
    public required ManifestResponse Raw { get; init; }

    /// <summary>The index the reference named, when it named one.</summary>
    public ManifestResponse? Index { get; init; }

    public Digest Digest => Raw.Digest;
}

/// <summary>
/// A client for one registry, speaking the OCI distribution API: pull and push of manifests and blobs,
/// cross-repository mounts, chunked uploads, tag listing; anonymous, basic and bearer-token authentication.
/// </summary>
/// <remarks>
/// https://github.com/opencontainers/distribution-spec/blob/main/spec.md. Thread-safe; keep one per registry
/// for the life of the process so connections and tokens are reused.
/// </remarks>
public sealed partial class RegistryClient : IDisposable
{
    /// <summary>Manifests larger than this are refused (the spec lets registries refuse above 4 MiB too).</summary>
    private const int MaxManifestBytes = 4 * 1024 * 1024;

    private readonly RegistryClientOptions _options;
    private readonly ICredentialProvider _credentials;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly RegistryHttp _http;

    /// <summary>Mounts and uploads in progress, by <c>repository@digest</c>; see <see cref="LinkOnceAsync"/>.</summary>
    private readonly ConcurrentDictionary<string, Task> _linking = new(StringComparer.Ordinal);

    public RegistryClient(string registry, RegistryClientOptions? options = null, ICredentialProvider? credentials = null, ILogger<RegistryClient>? logger = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(registry);
        Registry = registry;
        _options = options ?? new RegistryClientOptions();
        _options.Validate();
        _credentials = credentials ?? StaticCredentialProvider.Anonymous;
        _logger = logger ?? NullLogger<RegistryClient>.Instance;
        _time = time ?? TimeProvider.System;
        _http = new RegistryHttp(registry, _options);
    }

    /// <summary>The registry as written in references, e.g. <c>127.0.0.1:5100</c>.</summary>
    public string Registry { get; }

    /// <summary>The endpoint in use (https or, for insecure registries, http); null before the first request.</summary>
    public Uri? BaseUri => _baseUri;

    public void Dispose()
    {
        _http.Dispose();
        _endpointLock.Dispose();
    }

    /// <summary>
    /// Checks that the registry answers the API and accepts Farm's credentials.
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support
    /// </summary>
    public async Task PingAsync(CancellationToken cancellationToken)
    {
        var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Get, new Uri(b, "v2/")), new RequestTarget(TargetKind.Registry, Registry, null, $"the API check of {Registry} (/v2/)"), []);
        using var response = await SendAsync(spec, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Fetches a manifest or index by tag or digest, as served. A digest reference is verified against the
    /// content; a tag reference against the registry's <c>Docker-Content-Digest</c> when it sends one.
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
    /// </summary>
    public async Task<ManifestResponse> GetManifestAsync(string repository, string reference, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Manifest, Registry, repository, $"manifest {Registry}/{repository}{Separator(reference)}{reference}");
        var spec = new RequestSpec(b => ManifestRequest(HttpMethod.Get, b, repository, reference), target, [Pull(repository)]);
        using var response = await SendAsync(spec, cancellationToken).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength > MaxManifestBytes)
        {
            throw new RegistryRequestException(Registry, $"{target.Description} is {response.Content.Headers.ContentLength} bytes, more than the {MaxManifestBytes} Farm accepts. It is not an image manifest.");
        }

        var content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var actual = Digest.Sha256(content);
        if (Digest.TryParse(reference, out var pinned))
        {
            var computed = pinned.Algorithm == "sha256" ? actual : HashWith(pinned, content);
            if (computed != pinned)
            {
                throw new DigestMismatchException(pinned, computed, target.Description);
            }

            actual = pinned;
        }
        else if (response.Headers.TryGetValues("Docker-Content-Digest", out var values)
            && Digest.TryParse(values.FirstOrDefault(), out var announced) && announced.Algorithm == "sha256" && announced != actual)
        {
            throw new DigestMismatchException(announced, actual, target.Description);
        }

        var served = response.Content.Headers.ContentType?.MediaType;
        var mediaType = served is not null && (MediaTypes.IsIndex(served) || MediaTypes.IsManifest(served))
            ? served
            : OciJson.PeekMediaType(content) ?? served ?? MediaTypes.OciManifest;

        return new ManifestResponse { MediaType = mediaType, Digest = actual, Content = content };
    }

    /// <summary>The descriptor of a manifest (HEAD), or null when the tag or digest does not exist.</summary>
    public async Task<Descriptor?> HeadManifestAsync(string repository, string reference, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Manifest, Registry, repository, $"manifest {Registry}/{repository}{Separator(reference)}{reference}");
        var spec = new RequestSpec(b => ManifestRequest(HttpMethod.Head, b, repository, reference), target, [Pull(repository)]);
        using var response = await SendAsync(spec, cancellationToken, HttpStatusCode.OK, HttpStatusCode.NotFound).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.Headers.TryGetValues("Docker-Content-Digest", out var values) || !Digest.TryParse(values.FirstOrDefault(), out var digest))
        {
            // Without the header a HEAD says nothing useful; the GET computes the digest itself.
            return (await GetManifestAsync(repository, reference, cancellationToken).ConfigureAwait(false)).ToDescriptor();
        }

        return new Descriptor
        {
            MediaType = response.Content.Headers.ContentType?.MediaType ?? MediaTypes.OciManifest,
            Digest = digest,
            Size = response.Content.Headers.ContentLength ?? 0,
        };
    }

    /// <summary>
    /// Resolves a reference to one image manifest: an index (or Docker manifest list) is followed to its entry
    /// for <see cref="RegistryClientOptions.Platform"/> (linux/amd64 by default).
    /// </summary>
    public Task<PulledImage> PullManifestAsync(ImageReference image, CancellationToken cancellationToken) =>
        PullManifestAsync(image, _options.Platform, cancellationToken);

    /// <summary>Resolves a reference to one image manifest: an index is followed to its entry for <paramref name="platform"/>.</summary>
    /// <exception cref="PlatformNotFoundException">The index has no manifest for <paramref name="platform"/> (FARM2218).</exception>
    public async Task<PulledImage> PullManifestAsync(ImageReference image, Platform platform, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(platform);
        EnsureSameRegistry(image);
        var first = await GetManifestAsync(image.Repository, image.Reference, cancellationToken).ConfigureAwait(false);
        if (!MediaTypes.IsIndex(first.MediaType))
        {
            return new PulledImage { Reference = image, Manifest = OciJson.ParseManifest(first.Content.Span), Raw = first };
        }

        var index = OciJson.ParseIndex(first.Content.Span);
        var entry = index.FindManifest(platform)
            ?? throw new PlatformNotFoundException(image.ToString(), platform, [.. index.Manifests.Where(m => m.Platform is not null).Select(m => m.Platform!.ToString())]);
        var chosen = await GetManifestAsync(image.Repository, entry.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        return new PulledImage { Reference = image, Manifest = OciJson.ParseManifest(chosen.Content.Span), Raw = chosen, Index = first };
    }

    /// <summary>Downloads and parses an image config, verifying its digest.</summary>
    public async Task<ImageConfig> GetConfigAsync(string repository, Descriptor config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var bytes = await GetBlobBytesAsync(repository, config, cancellationToken).ConfigureAwait(false);
        return ImageConfig.Parse(bytes);
    }

    /// <summary>Downloads a small blob into memory, verifying it.</summary>
    public async Task<byte[]> GetBlobBytesAsync(string repository, Descriptor descriptor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        var stream = await OpenBlobAsync(repository, descriptor.Digest, descriptor.Size, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream(descriptor.Size is > 0 and < int.MaxValue ? (int)descriptor.Size : 0);
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }

    /// <summary>
    /// Opens a blob for streaming. The stream verifies digest and size as it is read and throws
    /// <see cref="DigestMismatchException"/> at the end of corrupt content; read it to the end before trusting it.
    /// Follows the redirects registries use to hand blobs to a storage backend, without the registry's credentials.
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
    /// </summary>
    public async Task<Stream> OpenBlobAsync(string repository, Digest digest, long? size, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Blob, Registry, repository, $"blob {digest} in {Registry}/{repository}", digest);
        var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Get, BlobUri(b, repository, digest)), target, [Pull(repository)], HttpCompletionOption.ResponseHeadersRead);
        var response = await SendAsync(spec, cancellationToken, HttpStatusCode.OK, HttpStatusCode.TemporaryRedirect, HttpStatusCode.Found, HttpStatusCode.SeeOther, HttpStatusCode.MovedPermanently, HttpStatusCode.PermanentRedirect).ConfigureAwait(false);
        for (var hops = 0; (int)response.StatusCode is >= 300 and < 400; hops++)
        {
            var location = response.Headers.Location;
            response.Dispose();
            if (location is null || hops >= 5)
            {
                throw new RegistryRequestException(Registry, $"Registry {Registry} redirected {target.Description} {(location is null ? "without a Location" : "too many times")}. Check the registry's storage configuration.");
            }

            var absolute = location.IsAbsoluteUri ? location : new Uri(BaseUri!, location);
            var redirected = new RequestSpec(_ => new HttpRequestMessage(HttpMethod.Get, absolute), target, [], HttpCompletionOption.ResponseHeadersRead);
            // The storage backend signs its own URL; the registry's token must not travel there.
            response = await SendUnauthenticatedAsync(redirected, cancellationToken).ConfigureAwait(false);
        }

        var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return new DigestVerifyingStream(body, digest, size ?? response.Content.Headers.ContentLength, target.Description, response);
    }

    /// <summary>The blob's size when the repository has it (HEAD), else null.</summary>
    public async Task<long?> StatBlobAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Blob, Registry, repository, $"blob {digest} in {Registry}/{repository}", digest);
        var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Head, BlobUri(b, repository, digest)), target, [Pull(repository)]);
        using var response = await SendAsync(spec, cancellationToken, HttpStatusCode.OK, HttpStatusCode.NotFound, HttpStatusCode.TemporaryRedirect, HttpStatusCode.Found).ConfigureAwait(false);
        return response.StatusCode == HttpStatusCode.NotFound ? null : response.Content.Headers.ContentLength ?? -1;
    }

    /// <summary>
    /// Links a blob from <paramref name="fromRepository"/> into <paramref name="repository"/> without sending it.
    /// False when the registry declined (it then opened an upload session, which is cancelled).
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#mounting-a-blob-from-another-repository
    /// </summary>
    public async Task<bool> MountBlobAsync(string repository, Digest digest, string fromRepository, CancellationToken cancellationToken) =>
        await TryMountBlobAsync(repository, digest, fromRepository, cancellationToken).ConfigureAwait(false) is not null;

    /// <summary>
    /// As <see cref="MountBlobAsync"/>, saying what happened: <see cref="BlobOutcome.Mounted"/>,
    /// <see cref="BlobOutcome.Exists"/> when the repository has the blob already (another push may have put it there
    /// since the caller looked), or null when the registry declined the mount.
    /// </summary>
    public Task<BlobOutcome?> TryMountBlobAsync(string repository, Digest digest, string fromRepository, CancellationToken cancellationToken) =>
        LinkOnceAsync(repository, digest, async () =>
        {
            // Looked up here, not only by the caller: another push may have linked it since.
            if (await StatBlobAsync(repository, digest, cancellationToken).ConfigureAwait(false) is not null)
            {
                _logger.BlobExists(digest, repository);
                return BlobOutcome.Exists;
            }

            var (mounted, location) = await TryMountAsync(repository, digest, fromRepository, cancellationToken).ConfigureAwait(false);
            if (location is not null)
            {
                await CancelUploadAsync(repository, location, cancellationToken).ConfigureAwait(false);
            }

            return mounted ? BlobOutcome.Mounted : (BlobOutcome?)null;
        }, cancellationToken);

    /// <summary>
    /// Puts a blob into the repository unless it is there already: HEAD, then a mount from
    /// <paramref name="mountFrom"/> when given, then an upload: monolithic (POST, PUT) up to
    /// <see cref="RegistryClientOptions.ChunkedUploadThreshold"/>, chunked (POST, PATCH..., PUT) above. The content
    /// is verified against the descriptor before the upload is committed; a mismatch cancels the upload.
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
    /// </summary>
    public Task<BlobOutcome> PushBlobAsync(string repository, Descriptor descriptor, Stream content, string? mountFrom, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        ArgumentNullException.ThrowIfNull(content);
        return LinkOnceAsync(repository, descriptor.Digest, () => PushBlobOnceAsync(repository, descriptor, content, mountFrom, cancellationToken), cancellationToken);
    }

    private async Task<BlobOutcome> PushBlobOnceAsync(string repository, Descriptor descriptor, Stream content, string? mountFrom, CancellationToken cancellationToken)
    {
        if (await StatBlobAsync(repository, descriptor.Digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            _logger.BlobExists(descriptor.Digest, repository);
            return BlobOutcome.Exists;
        }

        Uri? location = null;
        if (mountFrom is not null && mountFrom != repository)
        {
            (var mounted, location) = await TryMountAsync(repository, descriptor.Digest, mountFrom, cancellationToken).ConfigureAwait(false);
            if (mounted)
            {
                return BlobOutcome.Mounted;
            }
        }

        location ??= await StartUploadAsync(repository, cancellationToken).ConfigureAwait(false);
        try
        {
            var chunks = descriptor.Size <= _options.ChunkedUploadThreshold
                ? await UploadMonolithicAsync(repository, descriptor, content, location, cancellationToken).ConfigureAwait(false)
                : await UploadChunkedAsync(repository, descriptor, content, location, cancellationToken).ConfigureAwait(false);
            _logger.BlobUploaded(descriptor.Digest, descriptor.Size, repository, chunks);
            return BlobOutcome.Uploaded;
        }
        catch (DigestMismatchException)
        {
            await CancelUploadAsync(repository, location, cancellationToken).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Stores a manifest or index under a tag or its digest, with its media type as Content-Type, and returns
    /// its digest. https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests
    /// </summary>
    public async Task<Digest> PushManifestAsync(string repository, string reference, ReadOnlyMemory<byte> content, string mediaType, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(mediaType);
        var digest = Digest.Sha256(content.Span);
        if (Digest.TryParse(reference, out var pinned) && pinned != digest)
        {
            throw new DigestMismatchException(pinned, digest, $"manifest pushed as {repository}@{pinned}");
        }

        var target = new RequestTarget(TargetKind.Upload, Registry, repository, $"the push of manifest {Registry}/{repository}{Separator(reference)}{reference}");
        var spec = new RequestSpec(
            b =>
            {
                var request = new HttpRequestMessage(HttpMethod.Put, new Uri(b, $"v2/{repository}/manifests/{reference}"))
                {
                    Content = new ReadOnlyMemoryContent(content),
                };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return request;
            },
            target,
            [PullPush(repository)]);
        using var response = await SendManifestAsync(spec, $"v2/{repository}/manifests/{reference}", cancellationToken).ConfigureAwait(false);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var values) && Digest.TryParse(values.FirstOrDefault(), out var stored) && stored != digest)
        {
            throw new RegistryRequestException(Registry, $"Registry {Registry} stored {target.Description[13..]} as {stored}, not {digest}: it rewrote the manifest. Farm needs a registry that stores manifests byte for byte.");
        }

        _logger.ManifestPushed(digest, mediaType, repository, reference);
        return digest;
    }

    /// <summary>
    /// Sends a manifest PUT, again after a DIGEST_INVALID. The bytes were hashed here and the reference is a tag or
    /// that very digest, so the registry can only have misread its own storage: the distribution registry answers
    /// DIGEST_INVALID when the link to one of the manifest's blobs is being rewritten (truncated, then written) by a
    /// mount or upload of another client at the moment it checks it. A PUT of the same bytes to the same reference
    /// is idempotent, so it is sent again with the back-off of every other retry.
    /// </summary>
    private async Task<HttpResponseMessage> SendManifestAsync(RequestSpec spec, string path, CancellationToken cancellationToken)
    {
        for (var retries = 0; ; retries++)
        {
            try
            {
                return await SendAsync(spec, cancellationToken, HttpStatusCode.Created, HttpStatusCode.OK).ConfigureAwait(false);
            }
            catch (RegistryRequestException e) when (e.ErrorCodes.Contains("DIGEST_INVALID") && retries < _options.MaxRetries)
            {
                var delay = Backoff(retries + 1, null);
                _logger.Retrying(HttpMethod.Put, new Uri(_baseUri!, path), "DIGEST_INVALID", retries + 1, _options.MaxRetries, delay);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Deletes manifest <paramref name="digest"/> from <paramref name="repository"/> (the distribution registry removes
    /// the tags that point at it too), so the registry's garbage collection may free the blobs only it referred to.
    /// A registry without deletes (the distribution registry's default, <c>storage.delete.enabled: false</c>) answers
    /// 405 UNSUPPORTED: that is <see cref="ManifestDeletion.Refused"/>, not an error, since the caller can only report it.
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-manifests
    /// </summary>
    public async Task<ManifestDeletion> DeleteManifestAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Manifest, Registry, repository, $"the deletion of manifest {Registry}/{repository}@{digest}", digest);
        var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Delete, new Uri(b, $"v2/{repository}/manifests/{digest}")), target, [$"repository:{repository}:delete"]);
        using var response = await SendAsync(spec, cancellationToken, HttpStatusCode.Accepted, HttpStatusCode.OK, HttpStatusCode.NotFound, HttpStatusCode.MethodNotAllowed).ConfigureAwait(false);
        return response.StatusCode switch
        {
            HttpStatusCode.NotFound => ManifestDeletion.NotFound,
            HttpStatusCode.MethodNotAllowed => ManifestDeletion.Refused,
            _ => ManifestDeletion.Deleted,
        };
    }

    /// <summary>Serialises and pushes an image manifest under <paramref name="reference"/>.</summary>
    public Task<Digest> PushManifestAsync(string repository, string reference, ImageManifest manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return PushManifestAsync(repository, reference, OciJson.Serialize(manifest), manifest.MediaType ?? MediaTypes.OciManifest, cancellationToken);
    }

    /// <summary>
    /// Every tag of a repository, following the <c>Link</c> header from page to page.
    /// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
    /// </summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(string repository, CancellationToken cancellationToken)
    {
        var tags = new List<string>();
        var target = new RequestTarget(TargetKind.Tags, Registry, repository, $"the tag list of {Registry}/{repository}");
        var next = $"v2/{repository}/tags/list?n={_options.TagPageSize}";
        while (next is not null)
        {
            var page = next;
            var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Get, new Uri(b, page)), target, [Pull(repository)]);
            using var response = await SendAsync(spec, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("tags", out var list) && list.ValueKind == JsonValueKind.Array)
                {
                    tags.AddRange(list.EnumerateArray().Select(t => t.GetString()).OfType<string>());
                }
            }
            catch (JsonException e)
            {
                throw new RegistryRequestException(Registry, $"Registry {Registry} answered {target.Description} with invalid JSON ({e.Message}). Check the registry.", response.StatusCode);
            }

            next = NextLink(response);
        }

        return tags;
    }

    /// <summary>
    /// Runs <paramref name="link"/>, a mount or upload of blob <paramref name="digest"/> into
    /// <paramref name="repository"/> that first looks whether the blob is there, while no other one for the same blob
    /// and repository runs in this client.
    /// </summary>
    /// <remarks>
    /// Every upload commit and every mount makes the registry write the repository's link to the blob again, and
    /// the distribution registry's filesystem storage writes a file by truncating it first: a manifest PUT that
    /// checks its blobs in that moment reads an empty link and is refused with DIGEST_INVALID (and
    /// MANIFEST_BLOB_UNKNOWN). Concurrent pushes to one repository share their base layers, so without this each of
    /// them linked every shared blob again while the others wrote their manifests. A blob is linked once; whoever
    /// comes later finds it there and writes nothing.
    /// </remarks>
    private async Task<T> LinkOnceAsync<T>(string repository, Digest digest, Func<Task<T>> link, CancellationToken cancellationToken)
    {
        var key = $"{repository}@{digest}";
        while (true)
        {
            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var running = _linking.GetOrAdd(key, mine.Task);
            if (running != mine.Task)
            {
                await running.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            try
            {
                return await link().ConfigureAwait(false);
            }
            finally
            {
                _linking.TryRemove(new KeyValuePair<string, Task>(key, mine.Task));
                mine.SetResult();
            }
        }
    }

    private async Task<(bool Mounted, Uri? Location)> TryMountAsync(string repository, Digest digest, string fromRepository, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Upload, Registry, repository, $"the mount of blob {digest} from {fromRepository} into {Registry}/{repository}", digest);
        var query = $"?mount={Uri.EscapeDataString(digest.ToString())}&from={Uri.EscapeDataString(fromRepository)}";
        var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Post, new Uri(b, $"v2/{repository}/blobs/uploads/{query}")), target, [PullPush(repository), Pull(fromRepository)]);
        using var response = await SendAsync(spec, cancellationToken, HttpStatusCode.Created, HttpStatusCode.Accepted).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Created)
        {
            _logger.BlobMounted(digest, repository, fromRepository);
            return (true, null);
        }

        return (false, UploadLocation(response, target));
    }

    private async Task<Uri> StartUploadAsync(string repository, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Upload, Registry, repository, $"the start of an upload to {Registry}/{repository}");
        var spec = new RequestSpec(b => new HttpRequestMessage(HttpMethod.Post, new Uri(b, $"v2/{repository}/blobs/uploads/")), target, [PullPush(repository)]);
        using var response = await SendAsync(spec, cancellationToken, HttpStatusCode.Accepted).ConfigureAwait(false);
        return UploadLocation(response, target);
    }

    private async Task<int> UploadMonolithicAsync(string repository, Descriptor descriptor, Stream content, Uri location, CancellationToken cancellationToken)
    {
        // Buffered (at most ChunkedUploadThreshold bytes) so the PUT can be replayed after a dropped connection.
        var buffer = new byte[descriptor.Size];
        await ReadVerifiedAsync(content, descriptor, buffer, cancellationToken).ConfigureAwait(false);
        var target = new RequestTarget(TargetKind.Upload, Registry, repository, $"the upload of blob {descriptor.Digest} to {Registry}/{repository}", descriptor.Digest);
        var spec = new RequestSpec(_ => OctetRequest(HttpMethod.Put, WithDigest(location, descriptor.Digest), buffer, buffer.Length), target, [PullPush(repository)]);
        using var response = await SendAsync(spec, cancellationToken, HttpStatusCode.Created).ConfigureAwait(false);
        return 2;
    }

    private async Task<int> UploadChunkedAsync(string repository, Descriptor descriptor, Stream content, Uri location, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Upload, Registry, repository, $"the chunked upload of blob {descriptor.Digest} to {Registry}/{repository}", descriptor.Digest);
        using var hash = descriptor.Digest.CreateHash();
        var buffer = new byte[_options.ChunkSize];
        long offset = 0;
        var requests = 1;
        while (true)
        {
            var filled = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (filled == 0)
            {
                break;
            }

            hash.AppendData(buffer, 0, filled);
            if (offset + filled > descriptor.Size)
            {
                throw new DigestMismatchException(descriptor.Digest, Digest.FromHash(descriptor.Digest.Algorithm, hash.GetCurrentHash()), $"content pushed as blob {descriptor.Digest} (longer than its {descriptor.Size} bytes)");
            }

            var start = offset;
            var current = location;
            // A PATCH that dropped mid-body may have been partly stored; replaying it would fail with 416, so
            // only answers the registry gave (429, 5xx) are retried.
            var spec = new RequestSpec(
                _ =>
                {
                    var request = OctetRequest(HttpMethod.Patch, current, buffer, filled);
                    request.Content!.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + filled - 1}");
                    return request;
                },
                target,
                [PullPush(repository)],
                RetryDroppedConnections: false);
            using (var response = await SendAsync(spec, cancellationToken, HttpStatusCode.Accepted, HttpStatusCode.NoContent).ConfigureAwait(false))
            {
                location = UploadLocation(response, target);
            }

            offset += filled;
            requests++;
        }

        var actual = Digest.FromHash(descriptor.Digest.Algorithm, hash.GetHashAndReset());
        if (actual != descriptor.Digest || offset != descriptor.Size)
        {
            throw new DigestMismatchException(descriptor.Digest, actual, $"content pushed as blob {descriptor.Digest} ({offset} of {descriptor.Size} bytes)");
        }

        var final = location;
        var commit = new RequestSpec(_ => OctetRequest(HttpMethod.Put, WithDigest(final, descriptor.Digest), [], 0), target, [PullPush(repository)]);
        using var committed = await SendAsync(commit, cancellationToken, HttpStatusCode.Created).ConfigureAwait(false);
        return requests + 1;
    }

    private static async Task ReadVerifiedAsync(Stream content, Descriptor descriptor, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = await content.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        using var hash = descriptor.Digest.CreateHash();
        hash.AppendData(buffer, 0, read);
        var extra = new byte[1];
        var longer = read == buffer.Length && await content.ReadAsync(extra, cancellationToken).ConfigureAwait(false) > 0;
        if (longer)
        {
            hash.AppendData(extra);
        }

        var actual = Digest.FromHash(descriptor.Digest.Algorithm, hash.GetHashAndReset());
        if (actual != descriptor.Digest || read != descriptor.Size || longer)
        {
            var size = longer ? $"longer than its {descriptor.Size} bytes" : $"{read} of {descriptor.Size} bytes";
            throw new DigestMismatchException(descriptor.Digest, actual, $"content pushed as blob {descriptor.Digest} ({size})");
        }
    }

    private async Task CancelUploadAsync(string repository, Uri location, CancellationToken cancellationToken)
    {
        var target = new RequestTarget(TargetKind.Upload, Registry, repository, $"the cancellation of an upload to {Registry}/{repository}");
        try
        {
            var spec = new RequestSpec(_ => new HttpRequestMessage(HttpMethod.Delete, location), target, [PullPush(repository)]);
            var (response, _) = await SendRawAsync(spec, cancellationToken).ConfigureAwait(false);
            response.Dispose();
        }
        catch (Farm.Contracts.FarmException e)
        {
            // Cleanup only: the caller is about to report the real failure, which must not be replaced by this one.
            _logger.UploadCancelFailed(e, StripQueryPublic(location));
        }
    }

    private async Task<HttpResponseMessage> SendUnauthenticatedAsync(RequestSpec spec, CancellationToken cancellationToken)
    {
        using var request = spec.Create(BaseUri!);
        HttpResponseMessage response;
        try
        {
            response = await _http.Client.SendAsync(request, spec.Completion, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw RegistryErrors.FromTransport(e, spec.Target, request.RequestUri!, _http, 1);
        }

        if (response.IsSuccessStatusCode || (int)response.StatusCode is >= 300 and < 400)
        {
            return response;
        }

        using (response)
        {
            throw await RegistryErrors.FromResponseAsync(response, spec.Target, null, 1, cancellationToken).ConfigureAwait(false);
        }
    }

    private Uri UploadLocation(HttpResponseMessage response, RequestTarget target)
    {
        var location = response.Headers.Location
            ?? throw new RegistryRequestException(Registry, $"Registry {Registry} answered {target.Description} without a Location header. It does not follow the distribution spec.", response.StatusCode);
        return location.IsAbsoluteUri ? location : new Uri(BaseUri!, location);
    }

    private static Uri WithDigest(Uri location, Digest digest)
    {
        var builder = new UriBuilder(location);
        var query = builder.Query.TrimStart('?');
        var param = "digest=" + Uri.EscapeDataString(digest.ToString());
        builder.Query = query.Length > 0 ? $"{query}&{param}" : param;
        return builder.Uri;
    }

    private static HttpRequestMessage OctetRequest(HttpMethod method, Uri uri, byte[] buffer, int count)
    {
        var request = new HttpRequestMessage(method, uri) { Content = new ByteArrayContent(buffer, 0, count) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.ContentLength = count;
        return request;
    }

    private static HttpRequestMessage ManifestRequest(HttpMethod method, Uri baseUri, string repository, string reference)
    {
        var request = new HttpRequestMessage(method, new Uri(baseUri, $"v2/{repository}/manifests/{reference}"));
        foreach (var type in MediaTypes.AllManifests)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        }

        return request;
    }

    private static Uri BlobUri(Uri baseUri, string repository, Digest digest) => new(baseUri, $"v2/{repository}/blobs/{digest}");

    private static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var links))
        {
            return null;
        }

        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var open = link.IndexOf('<', StringComparison.Ordinal);
            var close = link.IndexOf('>', StringComparison.Ordinal);
            if (open >= 0 && close > open && link.Contains("rel=\"next\"", StringComparison.OrdinalIgnoreCase))
            {
                return link[(open + 1)..close].TrimStart('/');
            }
        }

        return null;
    }

    private static Digest HashWith(Digest algorithmOf, byte[] content)
    {
        using var hash = algorithmOf.CreateHash();
        hash.AppendData(content);
        return Digest.FromHash(algorithmOf.Algorithm, hash.GetHashAndReset());
    }

    private void EnsureSameRegistry(ImageReference image)
    {
        if (!string.Equals(image.Registry, Registry, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"{image} is in registry {image.Registry}, but this client talks to {Registry}.", nameof(image));
        }
    }

    private static string Separator(string reference) => reference.Contains(':', StringComparison.Ordinal) ? "@" : ":";

    private static string Pull(string repository) => $"repository:{repository}:pull";

    private static string PullPush(string repository) => $"repository:{repository}:pull,push";

    private static Uri StripQueryPublic(Uri uri) => StripQuery(uri);
}
