using Farm.Dockerfile.Context;

namespace Farm.Cli.Build;

/// <summary>
/// A git build context, <c>URL#REF:SUBDIR</c> as docker reads it: REF (a branch, a tag or a commit; the default branch
/// when left out) resolved to its commit, which is fetched and checked out with the git command (<see cref="GitSource"/>);
/// SUBDIR is the context directory within the checkout. The <c>.git</c> directory is not part of the context (as
/// docker). This runs on the user's machine, so ssh remotes are fetched with the user's own keys.
/// </summary>
internal static class GitContext
{
    /// <summary>Clones <paramref name="context"/> into <paramref name="directory"/>; returns the context directory (SUBDIR within it).</summary>
    /// <exception cref="GitUnavailableException">git is not installed (FARM5064).</exception>
    /// <exception cref="GitContextException">git failed, the ref names nothing, or SUBDIR is not a directory of the checkout (FARM5065).</exception>
    public static async Task<string> CloneAsync(string context, string directory, CancellationToken cancellationToken)
    {
        var source = GitSource.Parse(context) with { AllowSsh = true };
        try
        {
            var commit = await source.ResolveCommitAsync(cancellationToken).ConfigureAwait(false);
            return await source.CheckoutAsync(commit, directory, keepGitDir: false, cancellationToken).ConfigureAwait(false);
        }
        catch (GitCommandException e) when (e.Missing)
        {
            throw new GitUnavailableException(context, e);
        }
        catch (GitCommandException e)
        {
            throw new GitContextException(context, e.Reason);
        }
    }
}
