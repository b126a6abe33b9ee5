using System.Security.Cryptography;
using Farm.Contracts;

using Farm.Oci.IO;
using Farm.Oci.Net;

using Farm.Dockerfile.Context;

namespace Farm.Worker.Copy;

/// <summary>
/// Runs Dockerfile COPY and ADD as plain filesystem operations from a source root into a target root
/// filesystem, with Docker's rules for destinations, wildcards, ownership and modes.
/// See https://docs.docker.com/reference/dockerfile/#copy and https://docs.docker.com/reference/dockerfile/#add.
/// </summary>
/// <remarks>
/// Every source is matched and resolved, and every remote source downloaded and verified, before anything is
/// written, so a refused instruction leaves the target as it was.
/// </remarks>
public sealed class CopyOperation
{
    private readonly HttpClient _http;
    private readonly FetchFence? _fence;

    /// <param name="http">The worker's one HttpClient, used for ADD of http(s) URLs (made with <paramref name="fence"/>'s handler when there is one).</param>
    /// <param name="fence">Where ADD may fetch git sources from; null: anywhere (the local farm).</param>
    public CopyOperation(HttpClient http, FetchFence? fence = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        _http = http;
        _fence = fence;
    }

    /// <summary>Runs a COPY instruction.</summary>
    public Task<CopyResult> CopyAsync(CopyRequest request, CancellationToken cancellationToken) =>
        RunAsync(request, isAdd: false, cancellationToken);

    /// <summary>Runs an ADD instruction: COPY plus local tar extraction and http(s) downloads.</summary>
    public Task<CopyResult> AddAsync(CopyRequest request, CancellationToken cancellationToken) =>
        RunAsync(request, isAdd: true, cancellationToken);

    private async Task<CopyResult> RunAsync(CopyRequest request, bool isAdd, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var instruction = isAdd ? "ADD" : "COPY";
        if (request.Sources.Count == 0)
        {
            throw new CopyOptionException($"{instruction} needs at least one source and a destination");
        }

        var owner = request.Chown is null ? (FileOwner?)null : FileOwner.Parse(request.Chown, request.TargetRoot);
        var mode = request.Chmod is null ? null : ModeSpec.Parse(request.Chmod);
        var excludes = Selecting(string.Empty, () => new CopyExcludeMatcher(request.Excludes));
        var context = request.SourceKind == CopySourceKind.BuildContext;
        var tree = new DirectorySourceTree(request.SourceRoot, context ? ContextIndexTree.RootMode : null);
        var resolver = new CopySourceResolver(tree, context ? SourceRootKind.BuildContext : SourceRootKind.RootFilesystem);
        var checksum = request.Checksum is null ? null : ExpectedChecksum.Parse(request.Checksum);
        if (checksum is not null && (!isAdd || request.Sources.Any(s => !IsUrl(s))))
        {
            throw new CopyOptionException($"--checksum applies only to ADD of an http(s) URL; remove it from {instruction} '{string.Join(' ', request.Sources)}'");
        }

        var destination = ImageDestination(request);
        var destinationIsDirectory = EndsAsDirectory(request.Destination);
        var downloads = new List<Download>();
        var checkouts = new List<string>();
        try
        {
            // Plan: match, resolve and download everything before the first write.
            var local = new List<SourceMatch>();
            foreach (var source in request.Sources)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (isAdd && GitSource.IsGit(source))
                {
                    var checkout = Path.Combine(Path.GetTempPath(), "farm-git-" + Guid.NewGuid().ToString("N"));
                    checkouts.Add(checkout);
                    local.Add(await CheckoutAsync(source, request, checkout, cancellationToken).ConfigureAwait(false));
                    continue;
                }

                if (isAdd && IsUrl(source))
                {
                    downloads.Add(await DownloadAsync(new Uri(source), checksum, cancellationToken).ConfigureAwait(false));
                    continue;
                }

                // The coordinator keyed this step with the same resolver over the context index.
                foreach (var node in Selecting(source, () => resolver.Expand(source, excludes, instruction)))
                {
                    local.Add(new SourceMatch(source, node, tree.HostPath(node.ResolvedPath)));
                }
            }

            if ((request.Sources.Count > 1 || local.Count + downloads.Count > 1) && !destinationIsDirectory)
            {
                throw new CopyDestinationException(
                    $"{instruction} with more than one source file needs a directory destination ending with '/'; write '{request.Destination}/'");
            }

            // Write.
            var writer = new TargetWriter(request.TargetRoot, owner ?? FileOwner.Root, mode);
            foreach (var match in local)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (isAdd && match.Stat.IsRegularFile && ArchiveExtractor.IsArchive(match.HostPath))
                {
                    ArchiveExtractor.Validate(match.HostPath, match.Pattern, cancellationToken);
                    var into = writer.Resolve(destination, followFinal: true);
                    writer.EnsureDirectory(into, owner ?? FileOwner.Root);
                    ArchiveExtractor.Extract(match.HostPath, match.Pattern, into, writer, owner, cancellationToken);
                    continue;
                }

                CopyLocal(writer, match, destination, destinationIsDirectory, request.Parents, cancellationToken);
            }

            foreach (var download in downloads)
            {
                var target = FileTarget(writer, destination, destinationIsDirectory, download.FileName, download.Url.ToString());
                writer.EnsureDirectory(Path.GetDirectoryName(target)!, writer.Owner);
                writer.ClearForNonDirectory(target);
                File.Move(download.TempPath, target);
                UnixFile.Lchown(target, writer.Owner.Uid, writer.Owner.Gid);
                UnixFile.Chmod(target, mode?.Apply(0x180, isDirectory: false) ?? 0x180);
                if (download.LastModified is { } lastModified)
                {
                    UnixFile.SetTimes(target, lastModified);
                }

                writer.CountFile(download.Length);
            }

            return writer.Result;
        }
        finally
        {
            foreach (var download in downloads)
            {
                File.Delete(download.TempPath);
            }

            foreach (var checkout in checkouts.Where(Directory.Exists))
            {
                Directory.Delete(checkout, recursive: true);
            }
        }
    }

    /// <summary>
    /// ADD of a git repository: checks out the commit the coordinator keyed the step with (resolved here only for a job
    /// that does not say) into <paramref name="checkout"/>, and returns the checkout's directory (SUBDIR) as a source
    /// whose contents are added, <c>.git</c> only with <c>--keep-git-dir</c>. ssh remotes are refused: the worker's keys
    /// are not the build's.
    /// </summary>
    /// <exception cref="RemoteSourceException">git failed (FARM1209).</exception>
    /// <exception cref="FetchRefusedException">The fence refused an address of the repository or its submodules (FARM1213).</exception>
    private async Task<SourceMatch> CheckoutAsync(string source, CopyRequest request, string checkout, CancellationToken cancellationToken)
    {
        var git = GitSource.Parse(source) with { Fence = _fence };
        try
        {
            var commit = request.GitCommits.GetValueOrDefault(source) ?? await git.ResolveCommitAsync(cancellationToken).ConfigureAwait(false);
            var root = await git.CheckoutAsync(commit, checkout, request.KeepGitDir, cancellationToken).ConfigureAwait(false);
            var tree = new DirectorySourceTree(root, null);
            var node = Selecting(source, () => new CopySourceResolver(tree, SourceRootKind.RootFilesystem).Expand(".", new CopyExcludeMatcher([]), "ADD")).Single();
            return new SourceMatch(source, node, tree.HostPath(node.ResolvedPath));
        }
        catch (GitCommandException e)
        {
            throw new RemoteSourceException(GitSource.Redact(source), $"{GitSource.Redact(e.Reason)}; check the URL and the ref (a worker fetches git sources without credentials, never over ssh)", e);
        }
        catch (AddressRefusedException e)
        {
            throw new FetchRefusedException(GitSource.Redact(source), e);
        }
    }

    /// <summary>
    /// Runs the shared resolver and reports its errors with the worker's exception types (same codes, same messages).
    /// </summary>
    private static T Selecting<T>(string source, Func<T> select)
    {
        try
        {
            return select();
        }
        catch (BuildContextException e) when (e.Code == FarmErrorCodes.SourceOutsideContext)
        {
            throw new SourceOutsideContextException(source, e);
        }
        catch (BuildContextException e) when (e.Code == FarmErrorCodes.SourceNotFound)
        {
            throw new CopySourceNotFoundException(source, e);
        }
        catch (BuildContextException e) when (e.Code == FarmErrorCodes.CopyOption)
        {
            throw new CopyOptionException(e.Detail, e);
        }
    }

    private static void CopyLocal(TargetWriter writer, SourceMatch match, string destination, bool destinationIsDirectory, bool parents, CancellationToken cancellationToken)
    {
        var kept = parents ? ParentsPath(match) : string.Empty;
        if (match.Stat.IsDirectory)
        {
            // A directory's contents are copied, not the directory itself.
            var dirImagePath = kept.Length == 0 ? destination : destination.TrimEnd('/') + "/" + kept;
            var into = writer.Resolve(dirImagePath, followFinal: true);
            var created = writer.EnsureDirectory(into, writer.Owner);
            writer.CopyTree(match.HostPath, match.Node.Children, into, cancellationToken);
            if (created)
            {
                writer.ApplyMetadata(into, match.Stat, writer.Owner, isDirectory: true);
            }

            return;
        }

        string target;
        if (parents)
        {
            target = writer.Resolve(destination.TrimEnd('/') + "/" + kept, followFinal: false);
        }
        else
        {
            target = FileTarget(writer, destination, destinationIsDirectory, match.Name, match.Pattern);
        }

        writer.EnsureDirectory(Path.GetDirectoryName(target)!, writer.Owner);
        writer.CopyEntry(match.HostPath, match.Stat, target);
    }

    /// <summary>file -> existing directory or dest ending in '/' gives dest/name; otherwise exactly dest.</summary>
    private static string FileTarget(TargetWriter writer, string destination, bool destinationIsDirectory, string name, string source)
    {
        var resolved = writer.Resolve(destination, followFinal: true);
        if (destinationIsDirectory || UnixFile.Lstat(resolved) is { IsDirectory: true })
        {
            if (name.Length == 0)
            {
                throw new CopyDestinationException($"cannot tell a file name for '{source}'; give a file name as the destination instead of a directory");
            }

            return writer.Resolve(destination.TrimEnd('/') + "/" + name, followFinal: false);
        }

        return writer.Resolve(destination, followFinal: false);
    }

    /// <summary>--parents keeps the matched path, below a '/./' pivot in the pattern when there is one.</summary>
    private static string ParentsPath(SourceMatch match)
    {
        var pivot = match.Pattern.IndexOf("/./", StringComparison.Ordinal);
        var skip = pivot < 0 ? 0 : ContextPath.Split(ContextPath.Clean(match.Pattern[..pivot])).Length;
        return string.Join('/', ContextPath.Split(match.Node.Path).Skip(skip));
    }

    /// <summary>One source the resolver selected, with where it is on this worker's disk.</summary>
    private sealed record SourceMatch(string Pattern, SourceNode Node, string HostPath)
    {
        /// <summary>The lstat from the resolver: of the target, for a named source that is a symlink.</summary>
        public FileStat Stat => Node.Entry.Stat!.Value;

        /// <summary>The name a file source gets inside a destination directory.</summary>
        public string Name => Node.Name;
    }

    private static string ImageDestination(CopyRequest request)
    {
        var destination = request.Destination;
        if (destination.Length == 0)
        {
            throw new CopyOptionException("COPY/ADD needs a destination; write '.' for the working directory");
        }

        return destination.StartsWith('/') ? destination : request.WorkingDirectory.TrimEnd('/') + "/" + destination;
    }

    private static bool EndsAsDirectory(string destination) =>
        destination.EndsWith('/') || destination is "." or ".." || destination.EndsWith("/.", StringComparison.Ordinal)
        || destination.EndsWith("/..", StringComparison.Ordinal);

    private static bool IsUrl(string source) =>
        source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    private async Task<Download> DownloadAsync(Uri url, ExpectedChecksum? checksum, CancellationToken cancellationToken)
    {
        var tempPath = Path.Combine(Path.GetTempPath(), "farm-add-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new RemoteSourceException(GitSource.Redact(url.ToString()), $"the server answered {(int)response.StatusCode} {response.ReasonPhrase}; check the URL");
            }

            using var hash = IncrementalHash.CreateHash(checksum?.Algorithm ?? HashAlgorithmName.SHA256);
            long length = 0;
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                var output = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await using (output.ConfigureAwait(false))
                {
                    var buffer = new byte[1 << 16];
                    int read;
                    while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                        length += read;
                    }
                }
            }

            if (checksum is not null)
            {
                var actual = checksum.Prefix + Convert.ToHexStringLower(hash.GetHashAndReset());
                if (!string.Equals(actual, checksum.Text, StringComparison.Ordinal))
                {
                    throw new ChecksumMismatchException(GitSource.Redact(url.ToString()), checksum.Text, actual);
                }
            }

            var name = Uri.UnescapeDataString(url.AbsolutePath.TrimEnd('/'));
            name = name[(name.LastIndexOf('/') + 1)..];
            return new Download(url, tempPath, name, length, response.Content.Headers.LastModified);
        }
        catch (HttpRequestException e) when (FetchFence.RefusalIn(e) is { } refused)
        {
            File.Delete(tempPath);
            throw new FetchRefusedException(GitSource.Redact(url.ToString()), refused);
        }
        catch (HttpRequestException e)
        {
            File.Delete(tempPath);
            throw new RemoteSourceException(GitSource.Redact(url.ToString()), $"the download failed ({e.Message}); check the URL and the network", e);
        }
        catch
        {
            File.Delete(tempPath);
            throw;
        }
    }

    private sealed record Download(Uri Url, string TempPath, string FileName, long Length, DateTimeOffset? LastModified);

    private sealed record ExpectedChecksum(HashAlgorithmName Algorithm, string Prefix, string Text)
    {
        public static ExpectedChecksum Parse(string text)
        {
            var colon = text.IndexOf(':');
            var algorithm = colon < 0 ? string.Empty : text[..colon];
            var hex = colon < 0 ? string.Empty : text[(colon + 1)..];
            (HashAlgorithmName Name, int Length)? known = algorithm switch
            {
                "sha256" => (HashAlgorithmName.SHA256, 64),
                "sha384" => (HashAlgorithmName.SHA384, 96),
                "sha512" => (HashAlgorithmName.SHA512, 128),
                _ => null,
            };
            if (known is not { } k || hex.Length != k.Length || !hex.All(char.IsAsciiHexDigitLower))
            {
                throw new CopyOptionException($"--checksum={text} is not a digest; write --checksum=sha256:<64 lowercase hex digits>");
            }

            return new ExpectedChecksum(k.Name, algorithm + ":", text);
        }
    }
}
