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
public sealed class FileActionCache : IActionCache, IActionCacheInventory
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

        var entry = ActionCacheJson.Deserialize(key, bytes);
        Touch(path);
        return entry;
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ActionCacheRecord> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = Path.Combine(Directory, "sha256");
        if (!System.IO.Directory.Exists(root))
        {
            yield break;
        }

        foreach (var path in System.IO.Directory.EnumerateFiles(root, "*.json", SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = Path.GetFileName(path);
            if (name.StartsWith('.'))
            {
                continue;
            }

            var key = "sha256:" + name[..^".json".Length];
            ActionCacheRecord? record;
            try
            {
                InvalidCacheKeyException.Check(key);
                var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
                record = new ActionCacheRecord(key, ActionCacheJson.Deserialize(key, bytes), File.GetLastWriteTimeUtc(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ActionCacheCorruptEntryException or InvalidCacheKeyException)
            {
                // Removed meanwhile, or unreadable: a lookup would miss it too.
                record = null;
            }

            if (record is not null)
            {
                yield return record;
            }
        }
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

    /// <summary>
    /// Records a hit as the file's modification time: the entry's bytes never change, so the time says when a build
    /// last used it, which is what LRU eviction orders by. A failure only costs that ordering.
    /// </summary>
    private static void Touch(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Removed meanwhile, or a read-only state directory: the entry is still a hit.
        }
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
