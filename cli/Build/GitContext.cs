using System.Diagnostics;
using System.Text;

namespace Farm.Cli.Build;

/// <summary>
/// A git build context, <c>URL#REF:SUBDIR</c> as docker reads it, fetched with the git command: shallow at REF (a
/// branch, a tag or a commit), then the whole history when the server will not serve a commit shallowly; SUBDIR is
/// the context directory within the checkout. The <c>.git</c> directory is not part of the context (as docker).
/// </summary>
internal static class GitContext
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    /// <summary>Clones <paramref name="context"/> into <paramref name="directory"/>; returns the context directory (SUBDIR within it).</summary>
    /// <exception cref="GitUnavailableException">git is not installed (FARM5064).</exception>
    /// <exception cref="GitContextException">git failed, or SUBDIR is not a directory of the checkout (FARM5065).</exception>
    public static async Task<string> CloneAsync(string context, string directory, CancellationToken cancellationToken)
    {
        var (url, reference, subdirectory) = Parse(context);
        Directory.CreateDirectory(directory);
        await GitAsync(context, directory, cancellationToken, "init", "--quiet").ConfigureAwait(false);
        await GitAsync(context, directory, cancellationToken, "remote", "add", "origin", url).ConfigureAwait(false);
        var wanted = reference ?? "HEAD";
        try
        {
            await GitAsync(context, directory, cancellationToken, "fetch", "--quiet", "--depth=1", "--no-tags", "origin", wanted).ConfigureAwait(false);
            await GitAsync(context, directory, cancellationToken, "checkout", "--quiet", "FETCH_HEAD").ConfigureAwait(false);
        }
        catch (GitContextException shallow) when (reference is not null)
        {
            // A commit the server does not serve by id (uploadpack.allowReachableSHA1InWant off): fetch all, then check out.
            try
            {
                await GitAsync(context, directory, cancellationToken, "fetch", "--quiet", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*").ConfigureAwait(false);
                await GitAsync(context, directory, cancellationToken, "checkout", "--quiet", reference).ConfigureAwait(false);
            }
            catch (GitContextException everything)
            {
                throw new GitContextException(context, $"{shallow.Reason}; then, with every branch fetched, {everything.Reason}");
            }
        }

        if (File.Exists(Path.Combine(directory, ".gitmodules")))
        {
            await GitAsync(context, directory, cancellationToken, "submodule", "update", "--quiet", "--init", "--recursive", "--depth=1").ConfigureAwait(false);
        }

        Directory.Delete(Path.Combine(directory, ".git"), recursive: true);
        if (subdirectory is null)
        {
            return directory;
        }

        var full = Path.GetFullPath(Path.Combine(directory, subdirectory));
        if (!full.StartsWith(directory + "/", StringComparison.Ordinal) || !Directory.Exists(full) || new FileInfo(full).LinkTarget is not null)
        {
            throw new GitContextException(context, $"'{subdirectory}' is not a directory of the repository at {reference ?? "its default branch"}");
        }

        return full;
    }

    /// <summary>URL, REF (null: the default branch) and SUBDIR (null: the root) of <c>URL#REF:SUBDIR</c>.</summary>
    internal static (string Url, string? Reference, string? Subdirectory) Parse(string context)
    {
        var hash = context.IndexOf('#', StringComparison.Ordinal);
        var url = hash < 0 ? context : context[..hash];
        if (url.StartsWith("github.com/", StringComparison.Ordinal))
        {
            url = "https://" + url;
        }

        if (hash < 0)
        {
            return (url, null, null);
        }

        var fragment = context[(hash + 1)..];
        var colon = fragment.IndexOf(':', StringComparison.Ordinal);
        var reference = colon < 0 ? fragment : fragment[..colon];
        var subdirectory = colon < 0 ? null : fragment[(colon + 1)..].Trim('/');
        return (url, reference.Length == 0 ? null : reference, string.IsNullOrEmpty(subdirectory) ? null : subdirectory);
    }

    private static async Task GitAsync(string context, string directory, CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo("git")
        {
            WorkingDirectory = directory,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Never a prompt for a password on a terminal the build does not own: a private repository fails at once.
        start.Environment["GIT_TERMINAL_PROMPT"] = "0";
        start.Environment["GIT_ASKPASS"] = "true";
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new GitUnavailableException(context, e);
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

                throw new GitContextException(context, $"git {args[0]} did not finish within {Timeout.TotalMinutes} minutes");
            }

            await output.ConfigureAwait(false);
            var said = (await errors.ConfigureAwait(false)).Trim();
            if (process.ExitCode != 0)
            {
                var text = new StringBuilder($"git {string.Join(' ', args.Where(a => !a.Contains("://", StringComparison.Ordinal)))} failed with exit code {process.ExitCode}");
                text.Append(said.Length > 0 ? $": {said.ReplaceLineEndings(" ")}" : ".");
                throw new GitContextException(context, text.ToString());
            }
        }
    }
}
