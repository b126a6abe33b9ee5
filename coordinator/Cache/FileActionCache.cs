namespace Farm.Coordinator.Cache;

/// <summary>
/// The embedded farm's action cache: one JSON file per key, <c>DIR/sha256/ab/abcdef....json</c> (two-character
/// fan-out so no directory grows huge).
/// </summary>
/// <remarks>
/// A write goes to a temporary file in the same directory, is flushed to disk, then renamed over the final name:
/// rename is atomic on POSIX file systems, so a reader sees the old entry, the new one or none, never half of one,
/// even if the process dies mid-write. Leftover temporary files are harmless (they never match a key).
/// </remarks>
public sealed class FileActionCache : IActionCache
{
    public FileActionCache(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    public async Task<ActionCacheEntry?> TryGetAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ActionCacheUnavailableException(Directory, $"cannot read {path}: {e.Message}", e);
        }

        return ActionCacheJson.Deserialize(key, bytes);
    }

    public async Task PutAsync(string key, ActionCacheEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var path = PathOf(key);
        var dir = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            System.IO.Directory.CreateDirectory(dir);
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, useAsync: true);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(ActionCacheJson.Serialize(entry), cancellationToken).ConfigureAwait(false);
                // Data on disk before the rename makes it visible, so a crash cannot leave an empty entry behind.
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            TryDelete(temp);
            if (e is OperationCanceledException)
            {
                throw;
            }

            throw new ActionCacheUnavailableException(Directory, $"cannot write {path}: {e.Message}", e);
        }
    }

    public Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing was ever stored under this fan-out directory.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ActionCacheUnavailableException(Directory, $"cannot delete {path}: {e.Message}", e);
        }

        return Task.CompletedTask;
    }

    /// <summary>The file of a key; the key is validated first, so it cannot name a path outside the directory.</summary>
    public string PathOf(string key)
    {
        var hex = InvalidCacheKeyException.Check(key);
        return Path.Combine(Directory, "sha256", hex[..2], hex + ".json");
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The temporary name never matches a key; a leftover only costs disk space.
        }
    }
}
