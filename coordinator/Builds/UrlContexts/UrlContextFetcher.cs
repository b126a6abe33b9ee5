using System.Formats.Tar;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Farm.Contracts;
using Farm.Coordinator.Cache;
using Farm.Dockerfile.Context;
using Farm.Oci;
using Farm.Oci.Net;
using Farm.Oci.Stores;

namespace Farm.Coordinator.Builds.UrlContexts;

/// <summary>
/// Fetches a build context a client named by URL (<see cref="SubmitBuild.ContextUrl"/>) into the cache store, as a
/// client would upload it (docs/architecture.md, "A build, step by step", 1): a git repository through
/// <see cref="GitSource"/> with a farm's lockdown (no ssh, no <c>file://</c> or <c>ext::</c>, no machine or user git
/// configuration, no hooks, no prompt), or a tarball over HTTP(S) within a size bound, unpacked by the rules of
/// <see cref="ContextArchive"/>. Every address is checked by the <see cref="UrlContextPolicy"/> first. A git context is
/// remembered by its tenant, URL, commit and subdirectory in the action cache, so a build of a ref that has not moved
/// reads no repository.
/// </summary>
public sealed class UrlContextFetcher
{
    /// <summary>The media type of the action cache entries that remember a fetched git context (never a layer).</summary>
    public const string ContextMediaType = "application/vnd.farm.context.v1.tar";

    private readonly UrlContextPolicy _policy;
    private readonly IBlobStore _store;
    private readonly IActionCache _cache;
    private readonly string _temporary;

    public UrlContextFetcher(UrlContextPolicy policy, IBlobStore store, IActionCache cache, string temporary)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(cache);
        _policy = policy;
        _store = store;
        _cache = cache;
        _temporary = temporary;
    }

    /// <summary>
    /// Fetches <paramref name="context"/> for <paramref name="submit"/> and stores its tar and index; reads its Dockerfile
    /// at <see cref="SubmitBuild.DockerfilePath"/> unless the submission carries one.
    /// </summary>
    /// <exception cref="FarmException">Refused (FARM4360, FARM1243), unreachable (FARM1240), an unknown ref (FARM1230), not an archive (FARM1241), too large (FARM1242), an entry outside the root (FARM1220), no Dockerfile (FARM1244).</exception>
    public async Task<FetchedContext> FetchAsync(SubmitBuild submit, UrlContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(submit);
        ArgumentNullException.ThrowIfNull(context);
        Directory.CreateDirectory(_temporary);
        var work = Directory.CreateDirectory(Path.Combine(_temporary, "url-context-" + Guid.NewGuid().ToString("N"))).FullName;
        try
        {
            return context.Kind switch
            {
                "git" => await FetchGitAsync(submit, context, work, cancellationToken).ConfigureAwait(false),
                "tarball" => await FetchTarballAsync(submit, context, work, cancellationToken).ConfigureAwait(false),
                _ => throw new InvalidSubmissionException($"The context URL's kind '{context.Kind}' is neither git nor tarball."),
            };
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private async Task<FetchedContext> FetchGitAsync(SubmitBuild submit, UrlContext context, string work, CancellationToken cancellationToken)
    {
        var url = context.Url;
        var shown = GitSource.Redact(url) + (context.Ref is null && context.Subdirectory is null ? string.Empty : "#" + context.Ref + (context.Subdirectory is null ? string.Empty : ":" + context.Subdirectory));
        if (url.StartsWith("git@", StringComparison.Ordinal) || url.StartsWith("ssh://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("git+ssh://", StringComparison.OrdinalIgnoreCase))
        {
            throw new UrlContextSshRefusedException(url);
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("git" or "http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            throw new UrlContextRefusedException(url, "a farm fetches git contexts over git://, http:// and https:// only");
        }

        var port = uri.IsDefaultPort ? uri.Scheme switch { "git" => 9418, "http" => 80, _ => 443 } : uri.Port;
        await _policy.CheckAsync(url, uri.IdnHost, port, cancellationToken).ConfigureAwait(false);
        // git resolves the name again: the fence holds it to the addresses checked (pinned for http(s), the address
        // itself for git://, no redirects) and checks each submodule's host before git connects to it.
        var source = new GitSource(url, context.Ref, context.Subdirectory) { AllowSsh = false, Fence = _policy.Fence };
        string commit;
        try
        {
            commit = await source.ResolveCommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (GitCommandException e)
        {
            // Not wrapped: git may print the URL, user information included, and an inner exception is logged as it is.
            throw new GitContextUnavailableException(shown, e.Reason);
        }
        catch (AddressRefusedException e)
        {
            throw new UrlContextRefusedException(url, e.Message);
        }

        var key = CacheKey(submit.Tenant, url, commit, context.Subdirectory);
        if (await _cache.TryGetAsync(key, cancellationToken).ConfigureAwait(false) is { Layer: { MediaType: ContextMediaType } stored }
            && Digest.TryParse(stored.DiffId, out var indexDigest, out _)
            && await _store.StatAsync(indexDigest, cancellationToken).ConfigureAwait(false) is not null)
        {
            var text = submit.Dockerfile.Length > 0 ? submit.Dockerfile : await ReadFromTarAsync(stored.Digest, submit.DockerfilePath, url, cancellationToken).ConfigureAwait(false);
            return new FetchedContext(stored.Digest, stored.DiffId, commit, text, Cached: true, stored.Size);
        }

        string root;
        try
        {
            root = await source.CheckoutAsync(commit, Path.Combine(work, "git"), keepGitDir: false, cancellationToken).ConfigureAwait(false);
        }
        catch (GitCommandException e)
        {
            throw new UrlContextUnreachableException(shown, e.Reason);
        }
        catch (AddressRefusedException e)
        {
            // A submodule's host.
            throw new UrlContextRefusedException(url, e.Message);
        }

        var fetched = await StoreAsync(submit, url, root, dockerfileText: null, commit, work, cancellationToken).ConfigureAwait(false);
        await _cache.PutAsync(
            key,
            new ActionCacheEntry { Layer = new LayerRef(fetched.ContextDigest, fetched.IndexDigest, ContextMediaType, fetched.Bytes), Worker = "coordinator", Created = DateTimeOffset.UtcNow, BuildId = submit.BuildId },
            cancellationToken).ConfigureAwait(false);
        return fetched;
    }

    private async Task<FetchedContext> FetchTarballAsync(SubmitBuild submit, UrlContext context, string work, CancellationToken cancellationToken)
    {
        var url = context.Url;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UrlContextRefusedException(url, "a farm fetches tarball contexts over http:// and https:// only");
        }

        await _policy.CheckAsync(url, uri.IdnHost, uri.Port, cancellationToken).ConfigureAwait(false);
        var input = Path.Combine(work, "input");
        await DownloadAsync(url, uri, input, cancellationToken).ConfigureAwait(false);
        var root = Path.Combine(work, "context");
        Directory.CreateDirectory(root);
        string? text;
        try
        {
            // The same bound on the tar once decompressed: a small gzip of zeros must not fill the coordinator's disk.
            text = await ContextArchive.UnpackAsync(input, url, root, _policy.MaxBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (NotAContextArchiveException e)
        {
            throw new UrlContextNotAnArchiveException(url, e.Reason, e);
        }

        File.Delete(input);
        return await StoreAsync(submit, url, root, text, commit: null, work, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads <paramref name="url"/> to <paramref name="path"/>, connecting only to addresses the policy allows, up to the size bound.</summary>
    private async Task DownloadAsync(string url, Uri uri, string path, CancellationToken cancellationToken)
    {
        // Every connection checked, a redirect's included; no proxy (it would connect for us, to addresses never checked).
        var handler = _policy.Fence.Handler(TimeSpan.FromSeconds(15));
        handler.AutomaticDecompression = DecompressionMethods.None;
        handler.MaxAutomaticRedirections = 5;
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(30) };
        try
        {
            // User information is sent as Basic credentials to the URL's own host (a redirect elsewhere drops them), never
            // left in the URL, where a message could quote it.
            using var request = new HttpRequestMessage(HttpMethod.Get, new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri);
            if (uri.UserInfo.Length > 0)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.UnescapeDataString(uri.UserInfo))));
            }

            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new UrlContextUnreachableException(url, $"the server answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            if (response.Content.Headers.ContentLength > _policy.MaxBytes)
            {
                throw new UrlContextTooLargeException(url, _policy.MaxBytes);
            }

            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var file = File.Create(path);
            await using (file.ConfigureAwait(false))
            {
                var buffer = new byte[81920];
                long total = 0;
                int read;
                while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > _policy.MaxBytes)
                    {
                        throw new UrlContextTooLargeException(url, _policy.MaxBytes);
                    }

                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (HttpRequestException e) when (FetchFence.RefusalIn(e) is { } refused)
        {
            throw new UrlContextRefusedException(url, refused.Message, e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw new UrlContextUnreachableException(url, e.Message, e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new UrlContextUnreachableException(url, "no answer within 30 minutes", e);
        }
    }

    /// <summary>Packs the fetched directory (its <c>.dockerignore</c> applies) and puts tar and index into the cache store.</summary>
    private async Task<FetchedContext> StoreAsync(SubmitBuild submit, string url, string root, string? dockerfileText, string? commit, string work, CancellationToken cancellationToken)
    {
        string text;
        string dockerfilePath;
        if (submit.Dockerfile.Length > 0)
        {
            text = submit.Dockerfile;
            dockerfilePath = Path.Combine(root, "Dockerfile");
        }
        else if (dockerfileText is not null)
        {
            // A Dockerfile alone: the context is empty (as docker).
            text = dockerfileText;
            dockerfilePath = Path.Combine(work, "Dockerfile");
        }
        else
        {
            dockerfilePath = InsideRoot(root, submit.DockerfilePath) ?? throw new UrlContextDockerfileMissingException(url, submit.DockerfilePath);
            if (!File.Exists(dockerfilePath) || new FileInfo(dockerfilePath).LinkTarget is not null)
            {
                throw new UrlContextDockerfileMissingException(url, submit.DockerfilePath);
            }

            text = await File.ReadAllTextAsync(dockerfilePath, new UTF8Encoding(false), cancellationToken).ConfigureAwait(false);
        }

        var packed = await PackedContext.PackAsync(root, dockerfilePath, Path.Combine(work, "pack"), progress: null, cancellationToken, cache: null, _store.StatAsync).ConfigureAwait(false);
        await using (packed.ConfigureAwait(false))
        {
            if (packed.TarPath is not null && await _store.StatAsync(packed.Tar.Digest, cancellationToken).ConfigureAwait(false) is null)
            {
                var tar = packed.OpenTar();
                await using (tar.ConfigureAwait(false))
                {
                    await _store.PutAsync(packed.Tar, tar, cancellationToken).ConfigureAwait(false);
                }
            }

            if (await _store.StatAsync(packed.IndexDescriptor.Digest, cancellationToken).ConfigureAwait(false) is null)
            {
                using var bytes = new MemoryStream(packed.IndexBytes);
                await _store.PutAsync(packed.IndexDescriptor, bytes, cancellationToken).ConfigureAwait(false);
            }

            return new FetchedContext(packed.Tar.Digest.ToString(), packed.IndexDescriptor.Digest.ToString(), commit, text, Cached: false, packed.Tar.Size);
        }
    }

    /// <summary>The Dockerfile at <paramref name="path"/> in a stored context tar (a cache hit has no checkout to read).</summary>
    private async Task<string> ReadFromTarAsync(string tarDigest, string path, string url, CancellationToken cancellationToken)
    {
        var wanted = path.Replace('\\', '/').TrimStart('.', '/');
        var blob = await _store.OpenReadAsync(Digest.Parse(tarDigest), cancellationToken).ConfigureAwait(false);
        await using (blob.ConfigureAwait(false))
        {
            var reader = new TarReader(blob);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } entry)
                {
                    if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.Name.TrimStart('.', '/') == wanted && entry.DataStream is { } data)
                    {
                        using var text = new StreamReader(data, new UTF8Encoding(false));
                        return await text.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }

        throw new UrlContextDockerfileMissingException(url, path);
    }

    private static string? InsideRoot(string root, string path)
    {
        var full = Path.GetFullPath(Path.Combine(root, path.TrimStart('/')));
        if (!full.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal))
        {
            return null;
        }

        for (var parent = Path.GetDirectoryName(full); parent is not null && parent.Length > root.TrimEnd('/').Length; parent = Path.GetDirectoryName(parent))
        {
            if (new FileInfo(parent).LinkTarget is not null)
            {
                return null;
            }
        }

        return full;
    }

    /// <summary>
    /// The action cache key of a fetched git context: its tenant (one tenant never gets another's checkout by naming its
    /// commit), the URL without user information, the commit and the subdirectory.
    /// </summary>
    private static string CacheKey(string? tenant, string url, string commit, string? subdirectory) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"farm url context v1\n{tenant}\n{GitSource.Redact(url)}\n{commit}\n{subdirectory}")));
}

/// <summary>A URL context in the cache store: its tar and index digests, the commit (git), the Dockerfile, and whether it came from the cache.</summary>
public sealed record FetchedContext(string ContextDigest, string IndexDigest, string? Commit, string Dockerfile, bool Cached, long Bytes);
