using System.Text.RegularExpressions;
using Farm.Contracts;

namespace Farm.Cli.Build;

/// <summary><c>--ulimit</c> is not <c>NAME=SOFT[:HARD]</c> with a limit Linux knows (FARM5060).</summary>
public sealed class InvalidUlimitException(string value, string reason)
    : FarmException(FarmErrorCodes.InvalidUlimit, $"--ulimit {value}: {reason}. Write NAME=SOFT[:HARD], e.g. --ulimit nofile=1024:2048; NAME is one of {string.Join(", ", BuildFlags.UlimitNames)}.");

/// <summary><c>--add-host</c> is not <c>HOST:IP</c> with an IP address (FARM5061).</summary>
public sealed class InvalidAddHostException(string value, string reason)
    : FarmException(FarmErrorCodes.InvalidAddHost, $"--add-host {value}: {reason}. Write HOST:IP (or HOST=IP), e.g. --add-host db.internal:10.0.0.5.");

/// <summary><c>--build-context</c> is not <c>NAME=DIR|docker-image://REF|oci-layout://PATH[@DIGEST]</c> (FARM5062).</summary>
public sealed class InvalidBuildContextException(string value, string reason)
    : FarmException(FarmErrorCodes.InvalidBuildContext, $"--build-context {value}: {reason}. Write NAME=DIR, NAME=docker-image://IMAGE[:TAG|@DIGEST] or NAME=oci-layout://PATH[@sha256:...].");

/// <summary><c>--shm-size</c> or <c>--network</c> has a value <c>farm build</c> cannot use (FARM5068).</summary>
public sealed class InvalidBuildSandboxException(string message)
    : FarmException(FarmErrorCodes.InvalidBuildSandbox, message);

/// <summary>A URL context could not be fetched (FARM5063).</summary>
public sealed class RemoteContextUnreachableException(string url, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.RemoteContextUnreachable, $"cannot fetch the build context {UrlText.Redact(url)}: {UrlText.Redact(reason)}. Check the address and that the server answers from this machine.", inner);

/// <summary>A git context needs git, which is not installed (FARM5064).</summary>
public sealed class GitUnavailableException(string url, Exception? inner = null)
    : FarmException(FarmErrorCodes.GitUnavailable, $"the build context {UrlText.Redact(url)} is a git repository, and the git command is not installed here. Install it (apt-get install git) or clone the repository yourself and build the directory.", inner);

/// <summary>git could not fetch a git context, or its subdirectory is missing (FARM5065).</summary>
public sealed class GitContextException(string url, string reason)
    : FarmException(FarmErrorCodes.GitContextFailed, $"cannot use the git context {UrlText.Redact(url)}: {UrlText.Redact(reason)}")
{
    /// <summary>What went wrong, without the context's URL.</summary>
    public string Reason { get; } = reason;
}

/// <summary>URLs as messages may show them: a password or token in <c>https://USER:TOKEN@HOST/...</c> becomes <c>***</c>.</summary>
internal static partial class UrlText
{
    public static string Redact(string text) => UserInfo().Replace(text, "://***@");

    [GeneratedRegex(@"://[^/@\s]+@")]
    private static partial Regex UserInfo();
}

/// <summary><c>-f -</c> together with the context <c>-</c> (FARM5067).</summary>
public sealed class StdinTwiceException()
    : FarmException(FarmErrorCodes.StdinTwice, "standard input cannot be both the Dockerfile (-f -) and the build context (-). Give the context as a directory, URL or tar on standard input with its Dockerfile inside.");

/// <summary>A named build context cannot be used (FARM1221).</summary>
public sealed class NamedContextException(string name, string reason)
    : FarmException(FarmErrorCodes.NamedContextUnusable, $"the build context '{name}' (--build-context) cannot be used: {reason}");
