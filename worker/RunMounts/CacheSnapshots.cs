using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Layers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Worker.RunMounts;

/// <summary>
/// A cache directory to and from the blob store: stored as a gzipped layer tar of the plain directory (the layer writer
/// and reader, so the store, digests and the reader's path checks are those of layers), applied into a new directory
/// that then takes the cache's place. A snapshot is a whole copy of the cache, not a difference to the previous one.
/// </summary>
internal sealed partial class CacheSnapshots(FarmCacheSettings settings)
{
    private readonly ILogger _logger = settings.Logger ?? NullLogger.Instance;

    /// <summary>
    /// Stores <paramref name="directory"/> as a snapshot in the use's blob store; null when it is over the size bound
    /// (logged), empty, or the same as <paramref name="current"/> (the snapshot it was at: nothing to publish).
    /// </summary>
    public async Task<CacheSnapshot?> TakeAsync(string directory, CacheMounts.FarmUse use, string? current, CancellationToken cancellationToken)
    {
        var size = SizeOf(directory);
        if (size > settings.MaxSnapshotBytes)
        {
            LogTooBig(_logger, use.Id, size, settings.MaxSnapshotBytes);
            return null;
        }

        var file = Path.Combine(settings.Scratch, Guid.NewGuid().ToString("N") + ".cache");
        try
        {
            var stream = new FileStream(file, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                var written = await LayerWriter.WriteDirectoryAsync(directory, stream, new LayerWriteOptions { Compression = LayerCompression.Gzip }, cancellationToken).ConfigureAwait(false);
                var digest = written.Descriptor.Digest.ToString();
                if (written.IsEmpty || digest == current)
                {
                    return null;
                }

                stream.Position = 0;
                var store = await settings.Stores.OpenAsync(use.BlobStore, cancellationToken).ConfigureAwait(false);
                await store.PutAsync(written.Descriptor, stream, cancellationToken).ConfigureAwait(false);
                LogTaken(_logger, use.Id, digest, written.Descriptor.Size);
                return new CacheSnapshot
                {
                    Digest = digest,
                    DiffId = written.DiffId.ToString(),
                    MediaType = written.Descriptor.MediaType,
                    Size = written.Descriptor.Size,
                    BlobStore = use.BlobStore,
                    Worker = settings.Worker,
                    At = DateTimeOffset.UtcNow,
                };
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// Replaces <paramref name="directory"/> by <paramref name="snapshot"/>; false when the snapshot could not be read
    /// (gone from the store, say), logged: the step then uses the directory as this worker has it.
    /// </summary>
    public async Task<bool> RestoreAsync(CacheSnapshot snapshot, string directory, CancellationToken cancellationToken)
    {
        var restore = directory + ".restore";
        try
        {
            if (Directory.Exists(restore))
            {
                Directory.Delete(restore, recursive: true);
            }

            Directory.CreateDirectory(restore);
            var store = await settings.Stores.OpenAsync(snapshot.BlobStore, cancellationToken).ConfigureAwait(false);
            var blob = await store.OpenReadAsync(Digest.Parse(snapshot.Digest), cancellationToken).ConfigureAwait(false);
            await using (blob.ConfigureAwait(false))
            {
                var applied = await LayerReader.ApplyAsync(blob, restore, new LayerApplyOptions(), cancellationToken).ConfigureAwait(false);
                if (applied.DiffId.ToString() != snapshot.DiffId)
                {
                    throw new DigestMismatchException(Digest.Parse(snapshot.DiffId), applied.DiffId, $"The cache snapshot {snapshot.Digest}");
                }
            }

            var old = directory + ".old";
            if (Directory.Exists(directory))
            {
                Directory.Move(directory, old);
            }

            Directory.Move(restore, directory);
            if (Directory.Exists(old))
            {
                Directory.Delete(old, recursive: true);
            }

            LogRestored(_logger, snapshot.Digest, snapshot.Worker, snapshot.Size);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRestoreFailed(_logger, e, snapshot.Digest);
            if (Directory.Exists(restore))
            {
                Directory.Delete(restore, recursive: true);
            }

            return false;
        }
    }

    /// <summary>Bytes of the files under <paramref name="directory"/>, symbolic links not followed.</summary>
    internal static long SizeOf(string directory) =>
        new DirectoryInfo(directory)
            .EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true })
            .Sum(f => f.Length);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}' not published: its {Size} bytes are over the snapshot bound of {Max} bytes (Farm:Worker:CacheSnapshotMaxBytes); other workers keep the previous snapshot")]
    private static partial void LogTooBig(ILogger logger, string id, long size, long max);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}' stored as snapshot {Digest} ({Size} bytes)")]
    private static partial void LogTaken(ILogger logger, string id, string digest, long size);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache snapshot {Digest} from {Worker} ({Size} bytes) applied")]
    private static partial void LogRestored(ILogger logger, string digest, string worker, long size);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache snapshot {Digest} could not be applied; the step uses the cache as this worker has it")]
    private static partial void LogRestoreFailed(ILogger logger, Exception exception, string digest);
}
