using System.Diagnostics;
using System.Text;

namespace Farm.Dockerfile.Context;

/// <summary>
/// A git repository named as BuildKit names one, <c>URL#REF:SUBDIR</c> (a git context, an <c>ADD</c> source): REF a
/// branch, a tag or a commit (the default branch when left out), SUBDIR a directory of the checkout. Fetched with the
/// git command, which never prompts, reads no user or system configuration (so no credential helper of the machine
/// answers for an arbitrary URL) and refuses <c>file://</c> and <c>ext::</c> remotes, submodules included: a
/// Dockerfile cannot make a worker read the worker's own repositories.
/// </summary>
/// <param name="Url">The repository, as git takes it.</param>
/// <param name="Reference">The branch, tag or commit; null for the default branch.</param>
/// <param name="Subdirectory">The directory within the checkout; null for its root.</param>
public sealed partial record GitSource(string Url, string? Reference, string? Subdirectory)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Whether <c>ssh://</c> and <c>git@</c> remotes may be fetched, with the ssh keys of the machine that fetches: a
    /// user's own machine may (the CLI), a farm's coordinators and workers never (their keys are not the build's).
    /// </summary>
    public bool AllowSsh { get; init; }

    private string SshSetting => AllowSsh ? "protocol.ssh.allow=always" : "protocol.ssh.allow=never";

    /// <summary>
    /// More git settings (<c>name=value</c>, passed as <c>-c</c>) for every command: a farm pins the address an http(s)
    /// remote is fetched from (<c>http.curloptResolve</c>) to the one its policy checked, and turns redirects off.
    /// </summary>
    public IReadOnlyList<string> Settings { get; init; } = [];

    /// <summary>
    /// Whether <see cref="CheckoutAsync"/> fetches the checkout's submodules (as docker does). A farm fetching a context
    /// for a client does not: a submodule's URL is chosen by the repository, and its address would escape the checks
    /// the farm made on the context's own.
    /// </summary>
    public bool Submodules { get; init; } = true;

    private Task<string> GitAsync(string? directory, CancellationToken cancellationToken, params string[] args) =>
        RunCoreAsync(directory, [SshSetting, .. Settings], args, cancellationToken);

    /// <summary>Whether ADD takes <paramref name="source"/> as a git repository (BuildKit's forms).</summary>
    public static bool IsGit(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.StartsWith("git@", StringComparison.Ordinal) || source.StartsWith("git://", StringComparison.OrdinalIgnoreCase)
            || source.StartsWith("ssh://", StringComparison.OrdinalIgnoreCase)
            || ((source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
                && source.Split('#')[0].EndsWith(".git", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>URL, REF and SUBDIR of <c>URL#REF:SUBDIR</c>.</summary>
    public static GitSource Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var hash = source.IndexOf('#', StringComparison.Ordinal);
        var url = hash < 0 ? source : source[..hash];
        if (url.StartsWith("github.com/", StringComparison.Ordinal))
        {
            url = "https://" + url;
        }

        if (hash < 0)
        {
            return new GitSource(url, null, null);
        }

        var fragment = source[(hash + 1)..];
        var colon = fragment.IndexOf(':', StringComparison.Ordinal);
        var reference = colon < 0 ? fragment : fragment[..colon];
        var subdirectory = colon < 0 ? null : fragment[(colon + 1)..].Trim('/');
        return new GitSource(url, reference.Length == 0 ? null : reference, string.IsNullOrEmpty(subdirectory) ? null : subdirectory);
    }

    /// <summary>Whether <paramref name="reference"/> is a whole commit id (40 hex digits), which never moves.</summary>
    public static bool IsCommit(string? reference) => reference is { Length: 40 } r && r.All(char.IsAsciiHexDigit);

    /// <summary>
    /// The commit REF names now, asked of the repository (<c>git ls-remote</c>): a branch, then a tag (an annotated
    /// tag's commit), then any other ref of that name; a whole commit id is its own answer, without asking.
    /// </summary>
    /// <exception cref="GitCommandException">git failed, or the repository has no such branch or tag.</exception>
    public async Task<string> ResolveCommitAsync(CancellationToken cancellationToken)
    {
        if (IsCommit(Reference))
        {
            return Reference!.ToLowerInvariant();
        }

        var listing = await GitAsync(null, cancellationToken, "ls-remote", Url).ConfigureAwait(false);
        var refs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in listing.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split('\t');
            if (parts.Length == 2)
            {
                refs[parts[1]] = parts[0];
            }
        }

        var wanted = Reference ?? "HEAD";
        foreach (var name in new[] { $"refs/heads/{wanted}", $"refs/tags/{wanted}^{{}}", $"refs/tags/{wanted}", wanted })
        {
            if (refs.TryGetValue(name, out var commit))
            {
                return commit;
            }
        }

        throw new GitCommandException($"the repository has no branch or tag '{wanted}'");
    }

    /// <summary>
    /// Fetches <paramref name="commit"/> (shallow when the server serves it by id, else with every branch and tag) into
    /// <paramref name="directory"/>, checks it out with its submodules, and removes <c>.git</c> unless
    /// <paramref name="keepGitDir"/>; returns the directory the source names (SUBDIR within the checkout).
    /// </summary>
    /// <exception cref="GitCommandException">git failed, the checkout is not <paramref name="commit"/>, or SUBDIR is not a directory of it.</exception>
    public async Task<string> CheckoutAsync(string commit, string directory, bool keepGitDir, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(commit);
        Directory.CreateDirectory(directory);
        await GitAsync(directory, cancellationToken, "init", "--quiet").ConfigureAwait(false);
        await GitAsync(directory, cancellationToken, "remote", "add", "origin", Url).ConfigureAwait(false);
        try
        {
            await GitAsync(directory, cancellationToken, "fetch", "--quiet", "--depth=1", "--no-tags", "origin", commit).ConfigureAwait(false);
        }
        catch (GitCommandException shallow)
        {
            // A server that will not serve a commit by id (uploadpack.allowReachableSHA1InWant off): every branch and tag.
            try
            {
                await GitAsync(directory, cancellationToken, "fetch", "--quiet", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*").ConfigureAwait(false);
            }
            catch (GitCommandException everything)
            {
                throw new GitCommandException($"{shallow.Reason}; then, with every branch fetched, {everything.Reason}");
            }
        }

        await GitAsync(directory, cancellationToken, "checkout", "--quiet", "--detach", commit).ConfigureAwait(false);
        if (Submodules && File.Exists(Path.Combine(directory, ".gitmodules")))
        {
            await GitAsync(directory, cancellationToken, "submodule", "update", "--quiet", "--init", "--recursive", "--depth=1").ConfigureAwait(false);
        }

        if (!keepGitDir)
        {
            Directory.Delete(Path.Combine(directory, ".git"), recursive: true);
        }

        if (Subdirectory is null)
        {
            return directory;
        }

        var full = Path.GetFullPath(Path.Combine(directory, Subdirectory));
        if (!full.StartsWith(directory.TrimEnd('/') + "/", StringComparison.Ordinal) || !Directory.Exists(full) || new FileInfo(full).LinkTarget is not null)
        {
            throw new GitCommandException($"'{Subdirectory}' is not a directory of the repository at {Reference ?? "its default branch"}");
        }

        return full;
    }

    /// <summary>
    /// <paramref name="text"/> with the user information of any URL in it (<c>https://USER:TOKEN@HOST</c>) replaced by
    /// <c>***</c>: what an error message may say of a source that carries credentials.
    /// </summary>
    public static string Redact(string text) => string.IsNullOrEmpty(text) ? text : UserInfo().Replace(text, "://***@");

    [System.Text.RegularExpressions.GeneratedRegex(@"://[^/@\s]+@")]
    private static partial System.Text.RegularExpressions.Regex UserInfo();

    /// <summary>URL#REF:SUBDIR as written.</summary>
    public override string ToString() =>
        Url + (Reference is null && Subdirectory is null ? string.Empty : "#" + Reference + (Subdirectory is null ? string.Empty : ":" + Subdirectory));

    /// <summary>Runs git in <paramref name="directory"/> (or the current one) with <paramref name="sshSetting"/>; returns its standard output.</summary>
    /// <exception cref="GitCommandException">git is missing, failed, or ran past the time limit.</exception>
    public static Task<string> RunAsync(string? directory, string sshSetting, CancellationToken cancellationToken, params string[] args) =>
        RunCoreAsync(directory, [sshSetting], args, cancellationToken);

    private static async Task<string> RunCoreAsync(string? directory, IReadOnlyList<string> settings, string[] args, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        var start = new ProcessStartInfo("git")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        if (directory is not null)
        {
            start.WorkingDirectory = directory;
        }

        foreach (var arg in (string[])["-c", "protocol.file.allow=never", "-c", "protocol.ext.allow=never", .. settings.SelectMany(setting => (string[])["-c", setting]), "-c", "core.hooksPath=/dev/null", .. args])
        {
            start.ArgumentList.Add(arg);
        }

        // Never a prompt on a terminal the build does not own (a private repository fails at once), and none of the
        // machine's git configuration: its credential helpers must not answer for a URL a Dockerfile chose.
        start.Environment["GIT_TERMINAL_PROMPT"] = "0";
        start.Environment["GIT_ASKPASS"] = "true";
        start.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        start.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new GitCommandException($"git could not be started ({e.Message}); install it (apt-get install git)", e) { Missing = true };
        }

        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var errors = process.StandardError.ReadToEndAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }

                throw new GitCommandException($"git {args[0]} did not finish within {Timeout.TotalMinutes} minutes");
            }

            var stdout = await output.ConfigureAwait(false);
            var said = (await errors.ConfigureAwait(false)).Trim();
            if (process.ExitCode != 0)
            {
                // The URL is left out: it is named by the caller's message, and could carry a user name.
                var text = new StringBuilder($"git {string.Join(' ', args.Where(a => !a.Contains("://", StringComparison.Ordinal) && !a.StartsWith("git@", StringComparison.Ordinal)))} failed with exit code {process.ExitCode}");
                text.Append(said.Length > 0 ? $": {said.ReplaceLineEndings(" ")}" : ".");
                throw new GitCommandException(text.ToString());
            }

            return stdout;
        }
    }
}

/// <summary>
/// git failed for a <see cref="GitSource"/>: <see cref="Reason"/> says how. Always wrapped by its caller in an exception
/// with a code (the CLI's FARM5064/5065 for a context, FARM1230 when a build's ADD source cannot be resolved, FARM1209
/// when a worker cannot fetch it).
/// </summary>
public sealed class GitCommandException(string reason, Exception? inner = null) : Exception(reason, inner)
{
    /// <summary>What went wrong, as a clause.</summary>
    public string Reason { get; } = reason;

    /// <summary>git itself is not installed.</summary>
    public bool Missing { get; init; }
}
