using System.Security.Cryptography;
using System.Text;

using Farm.Oci.IO;

namespace Farm.Worker.Copy;

/// <summary>
/// One entry of the content a COPY/ADD selects, as it enters a cache key. Never an mtime: touching a file
/// must not invalidate the cache, changing its bytes, mode or owner must.
/// </summary>
/// <param name="Path">Path relative to the source root, as matched.</param>
/// <param name="Mode">Full st_mode, file type bits included.</param>
/// <param name="Uid">Owner uid in the source.</param>
/// <param name="Gid">Owner gid in the source.</param>
/// <param name="Size">Bytes of a regular file; 0 otherwise.</param>
/// <param name="Sha256">Hex sha256 of a regular file's bytes or a symlink's target; empty for directories and devices.</param>
public sealed record CopySourceEntry(string Path, uint Mode, uint Uid, uint Gid, long Size, string Sha256);

/// <summary>
/// Lists what COPY/ADD sources select, for the coordinator's cache key (DESIGN.md, "Cache keys"), with the
/// same matching, resolution and --exclude rules as <see cref="CopyOperation"/>.
/// See https://docs.docker.com/reference/dockerfile/#copy.
/// </summary>
public static class CopySourceHasher
{
    /// <summary>Enumerates the selected entries in ordinal path order.</summary>
    /// <exception cref="SourceOutsideContextException">A source resolves outside the root.</exception>
    /// <exception cref="CopySourceNotFoundException">A source matches nothing.</exception>
    public static async Task<IReadOnlyList<CopySourceEntry>> EnumerateAsync(
        string sourceRoot, IReadOnlyList<string> patterns, IReadOnlyList<string> excludes, CopySourceKind kind, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var matcher = new ExcludeMatcher(excludes ?? []);
        var entries = new SortedDictionary<string, CopySourceEntry>(StringComparer.Ordinal);
        foreach (var pattern in patterns)
        {
            foreach (var match in SourceMatcher.Expand(sourceRoot, pattern, kind, "COPY", cancellationToken))
            {
                if (matcher.IsExcluded(match.LogicalPath, match.Name))
                {
                    continue;
                }

                entries[match.LogicalPath] = await EntryAsync(match.LogicalPath, match.HostPath, match.Stat, cancellationToken).ConfigureAwait(false);
                if (match.Stat.IsDirectory)
                {
                    await WalkAsync(match.HostPath, string.Empty, match.LogicalPath, matcher, entries, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        return [.. entries.Values];
    }

    /// <summary>One digest over entries, in the order given: <c>sha256:...</c>.</summary>
    public static string Digest(IEnumerable<CopySourceEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var e in entries)
        {
            // NUL separated: a path cannot contain NUL, so no two entry lists encode alike.
            hash.AppendData(Encoding.UTF8.GetBytes($"{e.Path}\0{e.Mode}\0{e.Uid}\0{e.Gid}\0{e.Size}\0{e.Sha256}\0"));
        }

        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task WalkAsync(
        string dir, string relativeToItem, string relativeToRoot, ExcludeMatcher matcher, SortedDictionary<string, CopySourceEntry> entries, CancellationToken cancellationToken)
    {
        foreach (var host in Directory.EnumerateFileSystemEntries(dir))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = System.IO.Path.GetFileName(host);
            var itemPath = relativeToItem.Length == 0 ? name : relativeToItem + "/" + name;
            var rootPath = relativeToRoot.Length == 0 ? name : relativeToRoot + "/" + name;
            if (matcher.IsExcluded(itemPath, rootPath))
            {
                continue;
            }

            var stat = UnixFile.LstatExisting(host);
            entries[rootPath] = await EntryAsync(rootPath, host, stat, cancellationToken).ConfigureAwait(false);
            if (stat.IsDirectory)
            {
                await WalkAsync(host, itemPath, rootPath, matcher, entries, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task<CopySourceEntry> EntryAsync(string path, string host, FileStat stat, CancellationToken cancellationToken)
    {
        var sha = string.Empty;
        long size = 0;
        if (stat.IsRegularFile)
        {
            var file = new FileStream(host, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
            }

            size = stat.Size;
        }
        else if (stat.IsSymlink)
        {
            sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(new FileInfo(host).LinkTarget ?? string.Empty)));
        }

        return new CopySourceEntry(path, stat.Mode, stat.Uid, stat.Gid, size, sha);
    }
}
