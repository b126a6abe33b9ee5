using Farm.Contracts;
using Farm.Dockerfile.Context;

namespace Farm.Coordinator.Builds.UrlContexts;

/// <summary>The farm could not fetch a URL context: no answer, an HTTP error, or git could not fetch (FARM1240).</summary>
public sealed class UrlContextUnreachableException(string url, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.UrlContextUnreachable, $"the farm cannot fetch the build context {GitSource.Redact(url)}: {GitSource.Redact(reason)}. Check the address and that the farm can reach it, or fetch it yourself and build the directory.", inner);

/// <summary>A tarball URL context is neither a tar archive nor a Dockerfile (FARM1241).</summary>
public sealed class UrlContextNotAnArchiveException(string url, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.UrlContextNotAnArchive, $"the build context {GitSource.Redact(url)} is {reason}: serve a tar archive (plain, gzip, bzip2 or xz) holding the context and its Dockerfile, or a Dockerfile as text.", inner);

/// <summary>A tarball URL context is larger than the farm accepts (FARM1242).</summary>
public sealed class UrlContextTooLargeException(string url, long maxBytes)
    : FarmException(FarmErrorCodes.UrlContextTooLarge, $"the build context {GitSource.Redact(url)} is larger than the {maxBytes} bytes this farm downloads (Farm:Builds:UrlContexts:MaxBytes): make it smaller, or fetch it yourself and build the directory.");

/// <summary>An ssh git context went to a farm (FARM1243).</summary>
public sealed class UrlContextSshRefusedException(string url)
    : FarmException(FarmErrorCodes.UrlContextSshRefused, $"the build context {GitSource.Redact(url)} is fetched over ssh, which a farm never does with its own keys: clone it yourself (git clone, then build the directory, which is uploaded), or give an https:// or git:// URL the farm can read.");

/// <summary>The Dockerfile named is not in the context the farm fetched (FARM1244).</summary>
public sealed class UrlContextDockerfileMissingException(string url, string path)
    : FarmException(FarmErrorCodes.UrlContextDockerfileMissing, $"the build context {GitSource.Redact(url)} has no Dockerfile at '{path}': name it with -f PATH, relative to the context.");

/// <summary>The farm's policy refuses the URL context (FARM4360).</summary>
public sealed class UrlContextRefusedException(string url, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.UrlContextRefused, $"the farm refuses to fetch the build context {GitSource.Redact(url)}: {reason}. Fetch it yourself and build the directory, or ask the farm's operator (Farm:Builds:UrlContexts).", inner);

/// <summary>The ref of a git context names nothing, or the repository cannot be asked (FARM1230, as for an <c>ADD</c> git source).</summary>
public sealed class GitContextUnavailableException(string context, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.GitSourceUnavailable, $"the git context {GitSource.Redact(context)}: {GitSource.Redact(reason)}. Check the URL and the ref; a farm fetches git contexts over git://, http(s):// and without credentials of its own.", inner);
