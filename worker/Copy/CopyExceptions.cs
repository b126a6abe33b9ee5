using Farm.Contracts;
using Farm.Dockerfile.Context;

namespace Farm.Worker.Copy;

/// <summary>
/// FARM1203: a COPY/ADD source resolves outside its source root (<c>../x</c>, or a symlink that leaves the
/// build context, or a symlink loop). See https://docs.docker.com/reference/dockerfile/#copy.
/// </summary>
/// <remarks>The message is the shared resolver's (<see cref="CopySourceResolver"/>), the one the coordinator reports
/// for the same source when it computes the cache key.</remarks>
public sealed class SourceOutsideContextException : FarmException
{
    public SourceOutsideContextException(string source, BuildContextException resolverError)
        : base(FarmErrorCodes.SourceOutsideContext, (resolverError ?? throw new ArgumentNullException(nameof(resolverError))).Detail, resolverError)
    {
        SourcePath = source;
    }

    /// <summary>The source as written in the Dockerfile.</summary>
    public string SourcePath { get; }
}

/// <summary>FARM1204: a COPY/ADD source (or wildcard) matched nothing; the message is the shared resolver's.</summary>
public sealed class CopySourceNotFoundException : FarmException
{
    public CopySourceNotFoundException(string pattern, BuildContextException resolverError)
        : base(FarmErrorCodes.SourceNotFound, (resolverError ?? throw new ArgumentNullException(nameof(resolverError))).Detail, resolverError)
    {
        Pattern = pattern;
    }

    /// <summary>The pattern as written.</summary>
    public string Pattern { get; }
}

/// <summary>FARM1205: the destination cannot take what is being copied.</summary>
public sealed class CopyDestinationException : FarmException
{
    public CopyDestinationException(string message, Exception? innerException = null)
        : base(FarmErrorCodes.CopyDestination, message, innerException)
    {
    }
}

/// <summary>FARM1206: an option of COPY/ADD (<c>--chown</c>, <c>--chmod</c>, <c>--checksum</c>, a pattern) is invalid.</summary>
public sealed class CopyOptionException : FarmException
{
    public CopyOptionException(string message, Exception? innerException = null)
        : base(FarmErrorCodes.CopyOption, message, innerException)
    {
    }
}

/// <summary>FARM1207: a downloaded ADD source does not have the digest given with <c>--checksum</c>.</summary>
public sealed class ChecksumMismatchException : FarmException
{
    public ChecksumMismatchException(string url, string expected, string actual)
        : base(FarmErrorCodes.ChecksumMismatch, $"ADD source '{url}' has checksum {actual}, but --checksum expects {expected}; the file changed on the server or the checksum is wrong: verify it and update --checksum")
    {
        Expected = expected;
        Actual = actual;
    }

    public string Expected { get; }

    public string Actual { get; }
}

/// <summary>FARM1208: an archive given to ADD has an entry that would land outside the destination.</summary>
public sealed class UnsafeArchiveException : FarmException
{
    public UnsafeArchiveException(string archive, string entry, string reason)
        : base(FarmErrorCodes.UnsafeArchive, $"ADD archive '{archive}' was refused: entry '{entry}' {reason}; nothing was extracted. Rebuild the archive with relative paths inside one directory")
    {
        Entry = entry;
    }

    public string Entry { get; }
}

/// <summary>FARM1209: a remote ADD source could not be downloaded.</summary>
public sealed class RemoteSourceException : FarmException
{
    public RemoteSourceException(string url, string message, Exception? innerException = null)
        : base(FarmErrorCodes.RemoteSource, $"ADD source '{url}': {message}", innerException)
    {
    }
}

/// <summary>FARM1210: a source holds something COPY/ADD cannot reproduce (a corrupt archive, an unsupported tar entry).</summary>
public sealed class UnsupportedSourceException : FarmException
{
    public UnsupportedSourceException(string message, Exception? innerException = null)
        : base(FarmErrorCodes.UnsupportedSource, message, innerException)
    {
    }
}
