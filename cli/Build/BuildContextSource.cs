using System.Net;
using System.Text;
using Farm.Contracts;
using Farm.Dockerfile.Context;

namespace Farm.Cli.Build;

/// <summary>
/// Turns the CONTEXT argument and <c>-f</c> of <c>farm build</c> into a context directory and a Dockerfile, as docker
/// does: a directory as it is; <c>-</c>, standard input holding a tar of the context (plain, gzip, bzip2 or xz) or a
/// Dockerfile alone; a git URL (<c>https://HOST/REPO.git#REF:SUBDIR</c>, <c>git://</c>, <c>git@HOST:REPO</c>), cloned
/// with the git command; any other http(s) URL, fetched, a tar or a Dockerfile. What is not a directory is unpacked
/// into a temporary directory that <see cref="Dispose"/> removes. <c>-f -</c> reads the Dockerfile from standard input.
/// </summary>
internal sealed class BuildContextSource : IDisposable
{
    private readonly string? _temporary;

    private BuildContextSource(BuildSettings settings, string dockerfile, string? temporary)
    {
        Settings = settings;
        Dockerfile = dockerfile;
        _temporary = temporary;
    }

    /// <summary>The settings with <see cref="BuildSettings.ContextDirectory"/> and <see cref="BuildSettings.DockerfilePath"/> on disk.</summary>
    public BuildSettings Settings { get; }

    /// <summary>The Dockerfile's text.</summary>
    public string Dockerfile { get; }

    /// <summary>Resolves <paramref name="settings"/>' context and Dockerfile; <paramref name="stdin"/> is read only when one of them is <c>-</c>.</summary>
    /// <exception cref="Contracts.FarmException">The context cannot be fetched or unpacked (FARM5063 to FARM5067, FARM1220), or the Dockerfile read (FARM5012).</exception>
    public static async Task<BuildContextSource> ResolveAsync(BuildSettings settings, Func<Stream> stdin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(stdin);
        var context = settings.ContextDirectory;
        var dockerfileFlag = settings.DockerfilePath == Path.Combine(context, "Dockerfile") ? null : settings.DockerfilePath;
        if (context == "-" && dockerfileFlag == "-")
        {
            throw new StdinTwiceException();
        }

        if (context != "-" && !IsGitUrl(context) && !IsHttpUrl(context))
        {
            if (dockerfileFlag != "-")
            {
                return new BuildContextSource(settings, BuildCommand.ReadDockerfile(settings.DockerfilePath), null);
            }

            // -f -: the Dockerfile beside the context, in a file of its own, so the context stays what the user named.
            var directory = Directory.CreateTempSubdirectory("farm-context-").FullName;
            var path = Path.Combine(directory, "Dockerfile");
            await WriteStdinAsync(stdin, path, cancellationToken).ConfigureAwait(false);
            return new BuildContextSource(settings with { DockerfilePath = path }, BuildCommand.ReadDockerfile(path), directory);
        }

        var temporary = Directory.CreateTempSubdirectory("farm-context-").FullName;
        try
        {
            var root = Path.Combine(temporary, "context");
            Directory.CreateDirectory(root);
            string? dockerfileText = null;
            if (IsGitUrl(context))
            {
                root = await GitContext.CloneAsync(context, Path.Combine(temporary, "git"), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var input = Path.Combine(temporary, "input");
                if (context == "-")
                {
                    await WriteStdinAsync(stdin, input, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await DownloadAsync(context, input, cancellationToken).ConfigureAwait(false);
                }

                dockerfileText = await ContextArchive.UnpackAsync(input, context == "-" ? "standard input" : context, root, cancellationToken).ConfigureAwait(false);
                File.Delete(input);
            }

            string dockerfilePath;
            if (dockerfileFlag == "-")
            {
                dockerfilePath = Path.Combine(temporary, "Dockerfile");
                await WriteStdinAsync(stdin, dockerfilePath, cancellationToken).ConfigureAwait(false);
            }
            else if (dockerfileText is not null)
            {
                // A Dockerfile alone: the context is empty, and the Dockerfile is not part of it (as docker).
                dockerfilePath = Path.Combine(temporary, "Dockerfile");
                await File.WriteAllTextAsync(dockerfilePath, dockerfileText, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // -f names a file inside a fetched context, as docker reads it.
                dockerfilePath = Path.Combine(root, dockerfileFlag ?? "Dockerfile");
            }

            var resolved = settings with { ContextDirectory = root, DockerfilePath = dockerfilePath };
            return new BuildContextSource(resolved, BuildCommand.ReadDockerfile(dockerfilePath), temporary);
        }
        catch
        {
            Directory.Delete(temporary, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// The context as a remote farm fetches it itself (<c>farm submit URL</c>, <c>farm build --farm URL URL</c>): a git
    /// or http(s) URL becomes a <see cref="UrlContext"/>, and the Dockerfile is the farm's to read from it at <c>-f</c>'s
    /// path (default <c>Dockerfile</c>), unless <c>-f -</c> gives it here. Null for any other context, which the client
    /// reads and uploads as before. Nothing is fetched here: a queue-only client need not reach the URL at all.
    /// </summary>
    public static async Task<FarmUrlContext?> ForFarmAsync(BuildSettings settings, Func<Stream> stdin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(stdin);
        var context = settings.ContextDirectory;
        UrlContext url;
        if (IsGitUrl(context))
        {
            var git = GitSource.Parse(context);
            url = new UrlContext { Kind = "git", Url = git.Url, Ref = git.Reference, Subdirectory = git.Subdirectory };
        }
        else if (IsHttpUrl(context))
        {
            url = new UrlContext { Kind = "tarball", Url = context };
        }
        else
        {
            return null;
        }

        var dockerfileFlag = settings.DockerfilePath == Path.Combine(context, "Dockerfile") ? null : settings.DockerfilePath;
        if (dockerfileFlag != "-")
        {
            return new FarmUrlContext(url, dockerfileFlag ?? "Dockerfile", string.Empty);
        }

        using var text = new StreamReader(stdin(), new UTF8Encoding(false));
        return new FarmUrlContext(url, "Dockerfile", await text.ReadToEndAsync(cancellationToken).ConfigureAwait(false));
    }

    /// <summary>docker's rule: <c>git://</c>, <c>git@</c>, <c>github.com/</c>, or an http(s) URL whose path ends in <c>.git</c> (before any <c>#</c>).</summary>
    public static bool IsGitUrl(string context)
    {
        if (context.StartsWith("git://", StringComparison.Ordinal) || context.StartsWith("git@", StringComparison.Ordinal) || context.StartsWith("github.com/", StringComparison.Ordinal))
        {
            return true;
        }

        var hash = context.IndexOf('#', StringComparison.Ordinal);
        return IsHttpUrl(context) && (hash < 0 ? context : context[..hash]).EndsWith(".git", StringComparison.Ordinal);
    }

    private static bool IsHttpUrl(string context) =>
        context.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || context.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public void Dispose()
    {
        if (_temporary is not null && Directory.Exists(_temporary))
        {
            Directory.Delete(_temporary, recursive: true);
        }
    }

    private static async Task WriteStdinAsync(Func<Stream> stdin, string path, CancellationToken cancellationToken)
    {
        var input = stdin();
        var file = File.Create(path);
        await using (file.ConfigureAwait(false))
        {
            await input.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task DownloadAsync(string url, string path, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(15), AutomaticDecompression = DecompressionMethods.None }) { Timeout = TimeSpan.FromMinutes(30) };
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new RemoteContextUnreachableException(url, $"the server answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var file = File.Create(path);
            await using (file.ConfigureAwait(false))
            {
                await body.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw new RemoteContextUnreachableException(url, e.Message, e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new RemoteContextUnreachableException(url, "no answer within 30 minutes", e);
        }
    }
}

/// <summary>A URL context for a remote farm to fetch: the URL, the Dockerfile's path in it, and the Dockerfile when <c>-f -</c> gave it (else empty).</summary>
internal sealed record FarmUrlContext(UrlContext Context, string DockerfilePath, string Dockerfile);
