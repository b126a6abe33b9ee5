using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Text;

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

                dockerfileText = await UnpackAsync(input, context == "-" ? "standard input" : context, root, cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// Unpacks <paramref name="input"/> into <paramref name="root"/> when it is a tar (compressed or not), as docker
    /// detects it; returns the text when it is a Dockerfile instead, null for a tar.
    /// </summary>
    internal static async Task<string?> UnpackAsync(string input, string source, string root, CancellationToken cancellationToken)
    {
        var head = new byte[512];
        int read;
        using (var file = File.OpenRead(input))
        {
            read = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        }

        var compression = Compression(head.AsSpan(0, read));
        if (compression is null && !IsTar(head.AsSpan(0, read)))
        {
            if (read == 0)
            {
                throw new NotAContextArchiveException(source, "empty");
            }

            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(await File.ReadAllBytesAsync(input, cancellationToken).ConfigureAwait(false)) is var text && !text.Contains('\0', StringComparison.Ordinal)
                    ? text
                    : throw new NotAContextArchiveException(source, "binary, and not a tar archive");
            }
            catch (DecoderFallbackException)
            {
                throw new NotAContextArchiveException(source, "binary, and not a tar archive");
            }
        }

        var stream = await OpenDecompressedAsync(input, compression, source, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            await ExtractAsync(stream, source, root, cancellationToken).ConfigureAwait(false);
        }

        return null;
    }

    private static string? Compression(ReadOnlySpan<byte> head) => head switch
    {
        [0x1f, 0x8b, ..] => "gzip",
        [(byte)'B', (byte)'Z', (byte)'h', ..] => "bzip2",
        [0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00, ..] => "xz",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        _ => null,
    };

    /// <summary>A tar header: <c>ustar</c> at 257, or (a v7 tar) a header whose checksum adds up.</summary>
    private static bool IsTar(ReadOnlySpan<byte> head)
    {
        if (head.Length < 512)
        {
            return false;
        }

        if (head[257..262].SequenceEqual("ustar"u8))
        {
            return true;
        }

        var recorded = Encoding.ASCII.GetString(head[148..156]).Trim('\0', ' ');
        long sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += i is >= 148 and < 156 ? ' ' : head[i];
        }

        return recorded.Length > 0 && recorded.All(c => c is >= '0' and <= '7') && Convert.ToInt64(recorded, 8) == sum;
    }

    private static async Task<Stream> OpenDecompressedAsync(string input, string? compression, string source, CancellationToken cancellationToken)
    {
        var file = File.OpenRead(input);
        switch (compression)
        {
            case null:
                return file;
            case "gzip":
                return new GZipStream(file, CompressionMode.Decompress);
            default:
            {
                // No BCL codec for bzip2, xz or zstd: their own command decompresses into a file beside the input.
                await file.DisposeAsync().ConfigureAwait(false);
                var tar = input + ".tar";
                var tool = compression == "zstd" ? "zstd" : compression;
                var start = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (var arg in new[] { "-dc", input })
                {
                    start.ArgumentList.Add(arg);
                }

                Process process;
                try
                {
                    process = Process.Start(start)!;
                }
                catch (System.ComponentModel.Win32Exception e)
                {
                    throw new NotAContextArchiveException(source, $"{compression}-compressed, and the {tool} command that decompresses it is not installed ({e.Message})");
                }

                using (process)
                {
                    var output = File.Create(tar);
                    await using (output.ConfigureAwait(false))
                    {
                        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
                        await process.StandardOutput.BaseStream.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                        if (process.ExitCode != 0)
                        {
                            throw new NotAContextArchiveException(source, $"not a {compression} stream {tool} can read ({(await errors.ConfigureAwait(false)).Trim()})");
                        }
                    }
                }

                return File.OpenRead(tar);
            }
        }
    }

    /// <summary>Extracts a context tar under <paramref name="root"/>, refusing any entry that would land outside it (FARM1220).</summary>
    internal static async Task ExtractAsync(Stream tar, string source, string root, CancellationToken cancellationToken)
    {
        var rootFull = Path.GetFullPath(root);
        var reader = new TarReader(tar, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            while (true)
            {
                TarEntry? entry;
                try
                {
                    entry = await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
                {
                    throw new NotAContextArchiveException(source, $"a damaged tar archive ({e.Message})");
                }

                if (entry is null)
                {
                    break;
                }

                var name = entry.Name.Replace('\\', '/');
                while (name.StartsWith("./", StringComparison.Ordinal))
                {
                    name = name[2..];
                }

                if (name.Length == 0 || name == ".")
                {
                    continue;
                }

                var target = Inside(rootFull, name) ?? throw new ContextArchiveEscapeException(source, entry.Name);
                EnsureNoLinkOnTheWay(rootFull, target, source, entry.Name);
                switch (entry.EntryType)
                {
                    case TarEntryType.Directory:
                        Directory.CreateDirectory(target);
                        break;
                    case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        DeleteExisting(target);
                        await entry.ExtractToFileAsync(target, overwrite: true, cancellationToken).ConfigureAwait(false);
                        break;
                    case TarEntryType.SymbolicLink:
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        DeleteExisting(target);
                        // The link itself stays in the context; the packer stores it as a link, never follows it.
                        File.CreateSymbolicLink(target, entry.LinkName);
                        break;
                    case TarEntryType.HardLink:
                        var linked = Inside(rootFull, entry.LinkName.TrimStart('.', '/').Length == 0 ? "." : entry.LinkName) ?? throw new ContextArchiveEscapeException(source, entry.LinkName);
                        EnsureNoLinkOnTheWay(rootFull, linked, source, entry.LinkName);
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        DeleteExisting(target);
                        File.Copy(linked, target);
                        break;
                    default:
                        // Devices, fifos: nothing a context can carry into an image through COPY.
                        break;
                }

                if (entry.EntryType is not (TarEntryType.SymbolicLink or TarEntryType.HardLink) && !OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(target, entry.Mode & (UnixFileMode)0xFFF);
                }
            }
        }
    }

    private static string? Inside(string root, string name)
    {
        if (name.StartsWith('/'))
        {
            return null;
        }

        var full = Path.GetFullPath(Path.Combine(root, name));
        return full == root || full.StartsWith(root + "/", StringComparison.Ordinal) ? full.TrimEnd('/') : null;
    }

    /// <summary>No directory between the root and <paramref name="target"/> may be a symbolic link: writing through it would leave the root.</summary>
    private static void EnsureNoLinkOnTheWay(string root, string target, string source, string entry)
    {
        for (var parent = Path.GetDirectoryName(target); parent is not null && parent.Length > root.Length; parent = Path.GetDirectoryName(parent))
        {
            if (new FileInfo(parent).LinkTarget is not null)
            {
                throw new ContextArchiveEscapeException(source, entry);
            }
        }
    }

    private static void DeleteExisting(string path)
    {
        var info = new FileInfo(path);
        if (info.Exists || info.LinkTarget is not null)
        {
            info.Delete();
        }
    }
}
