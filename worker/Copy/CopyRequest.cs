namespace Farm.Worker.Copy;

/// <summary>What the source root of a COPY/ADD is, which decides how absolute symlinks in it resolve.</summary>
public enum CopySourceKind
{
    /// <summary>The extracted build context: nothing may resolve outside it (FARM1203).</summary>
    BuildContext,

    /// <summary>Another stage's or image's root filesystem (<c>COPY --from</c>): absolute symlinks mean its own root.</summary>
    RootFilesystem,
}

/// <summary>
/// One COPY or ADD instruction, after variable expansion, ready to run against a root filesystem.
/// See https://docs.docker.com/reference/dockerfile/#copy and https://docs.docker.com/reference/dockerfile/#add.
/// </summary>
public sealed record CopyRequest
{
    /// <summary>Host directory the sources are relative to (the context, or the <c>--from</c> root filesystem).</summary>
    public required string SourceRoot { get; init; }

    public CopySourceKind SourceKind { get; init; } = CopySourceKind.BuildContext;

    /// <summary>Sources as written (wildcards allowed; a leading <c>/</c> means the source root; ADD also takes http(s) URLs).</summary>
    public required IReadOnlyList<string> Sources { get; init; }

    /// <summary>Destination as written: absolute, or relative to <see cref="WorkingDirectory"/>; a trailing <c>/</c> means a directory.</summary>
    public required string Destination { get; init; }

    /// <summary>The WORKDIR in effect, absolute inside the image.</summary>
    public string WorkingDirectory { get; init; } = "/";

    /// <summary>Host directory of the image's root filesystem being written (the merged overlay mount).</summary>
    public required string TargetRoot { get; init; }

    /// <summary><c>--chown=user[:group]</c>; null means 0:0 (and the archive's own owners for ADD extraction).</summary>
    public string? Chown { get; init; }

    /// <summary><c>--chmod</c>, octal or simple symbolic; null keeps the source's modes.</summary>
    public string? Chmod { get; init; }

    /// <summary><c>--exclude</c> patterns (.dockerignore syntax).</summary>
    public IReadOnlyList<string> Excludes { get; init; } = [];

    /// <summary>
    /// <c>--link</c>: unused here; the coordinator gives a <c>--link</c> job no parent layers, so its target root is
    /// empty and the layer does not depend on the layers below (its cache key does not either).
    /// </summary>
    public bool Link { get; init; }

    /// <summary><c>--parents</c>: keep each source's path (below a <c>/./</c> pivot if present) under the destination.</summary>
    public bool Parents { get; init; }

    /// <summary>ADD <c>--checksum=sha256:...</c> for URL sources.</summary>
    public string? Checksum { get; init; }

    /// <summary>ADD <c>--keep-git-dir</c>: a git source's <c>.git</c> directory is added too.</summary>
    public bool KeepGitDir { get; init; }

    /// <summary>The commit to check out for each git source (as written); one missing is resolved here, now.</summary>
    public IReadOnlyDictionary<string, string> GitCommits { get; init; } = new Dictionary<string, string>();
}

/// <summary>What a COPY/ADD wrote, for progress reporting.</summary>
public sealed record CopyResult(long Files, long Directories, long Symlinks, long Bytes)
{
    public static CopyResult Empty { get; } = new(0, 0, 0, 0);
}
