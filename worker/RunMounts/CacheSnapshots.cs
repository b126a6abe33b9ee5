using System.Diagnostics;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Layers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Farm.Worker.RunMounts;

/// <summary>
/// A cache directory to and from the blob store, as gzipped layer tars (the layer writer and reader, so the store,
/// digests, whiteouts and the reader's path checks are those of layers). A snapshot is a chain: a whole copy of the
/// cache at the bottom, then deltas (files changed or added since the blob below, whiteouts for files deleted), each
/// applied over the one below it into a new directory that then takes the cache's place.
/// </summary>
/// <remarks>
/// Taking a snapshot is split in two. <see cref="Capture"/> runs when the step ends, before its cache is let go: it
/// walks the directory (stat calls only), compares it with the manifest of the snapshot the directory is at, and copies
/// just what changed into a staging directory of the worker's scratch space; nothing changed, nothing copied, nothing
/// published. <see cref="PublishAsync"/> then packs and stores the staging directory off the step's path, while the
/// next step may already write into the cache.
/// </remarks>
internal sealed partial class CacheSnapshots(FarmCacheSettings settings)
{
    private readonly ILogger _logger = settings.Logger ?? NullLogger.Instance;

    /// <summary>
    /// What a step changed in <paramref name="directory"/> since <paramref name="before"/> (the manifest of the snapshot
    /// it is at; null: unknown, so all of it), copied into a new staging directory: a delta, or the whole cache when
    /// <paramref name="whole"/> says so for the bytes the delta would copy (or nothing is known). Null when nothing changed, or the cache is over the size bound
    /// (logged). The new manifest is <see cref="CacheCapture.Manifest"/>, for the caller to keep once the farm takes it.
    /// </summary>
    public CacheCapture? Capture(string directory, string id, CacheManifest? before, Func<long, bool> whole)
    {
        var started = Stopwatch.GetTimestamp();
        var now = CacheManifest.Walk(directory);
        var changes = now.Since(before);
        if (changes.None)
        {
            var walked = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            LogUnchanged(_logger, id, now.Entries.Count, walked);
            return null;
        }

        var size = now.FileBytes;
        if (size > settings.MaxSnapshotBytes)
        {
            LogTooBig(_logger, id, size, settings.MaxSnapshotBytes);
            return null;
        }

        var delta = before is not null && !whole(changes.ChangedBytes);
        var staging = Path.Combine(settings.Scratch, Guid.NewGuid().ToString("N") + ".cache");
        Directory.CreateDirectory(staging);
        try
        {
            var copied = now.Stage(directory, staging, delta ? changes : now.Since(null));
            var took = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            LogCaptured(_logger, id, delta ? "delta" : "whole", changes.Changed.Count, changes.Deleted.Count, copied, took);
            return new CacheCapture(staging, delta, now, copied);
        }
        catch
        {
            Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Packs <paramref name="capture"/> and stores it in the use's blob store as a snapshot over
    /// <paramref name="parent"/> (ignored for a whole capture); deletes the staging directory.
    /// </summary>
    public async Task<CacheSnapshot> PublishAsync(CacheCapture capture, CacheSnapshot? parent, CacheMounts.FarmUse use, long generation, CancellationToken cancellationToken)
    {
        var file = Path.Combine(settings.Scratch, Guid.NewGuid().ToString("N") + ".cache.tar");
        try
        {
            var stream = new FileStream(file, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                var written = await LayerWriter.WriteDirectoryAsync(capture.Staging, stream, new LayerWriteOptions { Compression = LayerCompression.Gzip }, cancellationToken).ConfigureAwait(false);
                var digest = written.Descriptor.Digest.ToString();
                stream.Position = 0;
                var store = await settings.Stores.OpenAsync(use.BlobStore, cancellationToken).ConfigureAwait(false);
                await store.PutAsync(written.Descriptor, stream, cancellationToken).ConfigureAwait(false);
                LogTaken(_logger, use.Id, digest, written.Descriptor.Size, capture.Delta ? "a delta" : "whole");
                return new CacheSnapshot
                {
                    Digest = digest,
                    DiffId = written.DiffId.ToString(),
                    MediaType = written.Descriptor.MediaType,
                    Size = written.Descriptor.Size,
                    BlobStore = use.BlobStore,
                    Worker = settings.Worker,
                    At = DateTimeOffset.UtcNow,
                    Parent = capture.Delta ? parent : null,
                    Generation = generation,
                };
            }
        }
        finally
        {
            File.Delete(file);
            Discard(capture);
        }
    }

    /// <summary>Deletes a capture that will not be published.</summary>
    public static void Discard(CacheCapture capture)
    {
        if (Directory.Exists(capture.Staging))
        {
            Directory.Delete(capture.Staging, recursive: true);
        }
    }

    /// <summary>
    /// Replaces <paramref name="directory"/> by <paramref name="snapshot"/> (its chain applied in order, each blob's
    /// diff_id checked) and returns the manifest of what it holds; null when a blob could not be read (gone from the
    /// store, say), logged: the step then uses the directory as this worker has it.
    /// </summary>
    public async Task<CacheManifest?> RestoreAsync(CacheSnapshot snapshot, string directory, CancellationToken cancellationToken)
    {
        var restore = directory + ".restore";
        try
        {
            if (Directory.Exists(restore))
            {
                Directory.Delete(restore, recursive: true);
            }

            Directory.CreateDirectory(restore);
            var chain = new List<CacheSnapshot>();
            for (var s = snapshot; s is not null; s = s.Parent)
            {
                chain.Add(s);
            }

            chain.Reverse();
            await ApplyAsync(chain, restore, cancellationToken).ConfigureAwait(false);

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

            var bytes = chain.Sum(c => c.Size);
            LogRestored(_logger, snapshot.Digest, snapshot.Worker, chain.Count, bytes);
            return CacheManifest.Walk(directory);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRestoreFailed(_logger, e, snapshot.Digest);
            if (Directory.Exists(restore))
            {
                Directory.Delete(restore, recursive: true);
            }

            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache '{Id}' not published: its {Size} bytes are over the snapshot bound of {Max} bytes (Farm:Worker:CacheSnapshotMaxBytes); other workers keep the previous snapshot")]
    private static partial void LogTooBig(ILogger logger, string id, long size, long max);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}' stored as snapshot {Digest} ({Size} bytes, {Kind})")]
    private static partial void LogTaken(ILogger logger, string id, string digest, long size, string kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}' unchanged ({Entries} entries walked in {Milliseconds:F0} ms): nothing to publish")]
    private static partial void LogUnchanged(ILogger logger, string id, int entries, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache '{Id}' captured as {Kind}: {Changed} changed, {Deleted} deleted, {Bytes} bytes copied in {Milliseconds:F0} ms")]
    private static partial void LogCaptured(ILogger logger, string id, string kind, int changed, int deleted, long bytes, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache snapshot {Digest} from {Worker} ({Blobs} blobs, {Size} bytes) applied")]
    private static partial void LogRestored(ILogger logger, string digest, string worker, int blobs, long size);

    /// <summary>
    /// Brings <paramref name="directory"/>, which is exactly as the snapshot <paramref name="below"/> left it, to
    /// <paramref name="snapshot"/> by applying in place only the deltas between them; returns the manifest of what it
    /// holds, or null when a blob could not be read or applied (logged; the directory is then at no known snapshot,
    /// and the caller restores it whole).
    /// </summary>
    public async Task<CacheManifest?> CatchUpAsync(CacheSnapshot snapshot, string below, string directory, CancellationToken cancellationToken)
    {
        var deltas = new List<CacheSnapshot>();
        for (var s = snapshot; s is not null && s.Digest != below; s = s.Parent)
        {
            deltas.Add(s);
        }

        deltas.Reverse();
        try
        {
            await ApplyAsync(deltas, directory, cancellationToken).ConfigureAwait(false);
            var bytes = deltas.Sum(c => c.Size);
            LogCaughtUp(_logger, snapshot.Digest, snapshot.Worker, deltas.Count, bytes, below);
            return CacheManifest.Walk(directory);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRestoreFailed(_logger, e, snapshot.Digest);
            return null;
        }
    }

    private async Task ApplyAsync(IEnumerable<CacheSnapshot> blobs, string target, CancellationToken cancellationToken)
    {
        foreach (var link in blobs)
        {
            var store = await settings.Stores.OpenAsync(link.BlobStore, cancellationToken).ConfigureAwait(false);
            var blob = await store.OpenReadAsync(Digest.Parse(link.Digest), cancellationToken).ConfigureAwait(false);
            await using (blob.ConfigureAwait(false))
            {
                var applied = await LayerReader.ApplyAsync(blob, target, new LayerApplyOptions(), cancellationToken).ConfigureAwait(false);
                if (applied.DiffId.ToString() != link.DiffId)
                {
                    throw new DigestMismatchException(Digest.Parse(link.DiffId), applied.DiffId, $"The cache snapshot {link.Digest}");
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Cache snapshot {Digest} from {Worker} caught up with: {Blobs} deltas ({Size} bytes) applied over {Below}, which this worker had")]
    private static partial void LogCaughtUp(ILogger logger, string digest, string worker, int blobs, long size, string below);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache snapshot {Digest} could not be applied; the step uses the cache as this worker has it")]
    private static partial void LogRestoreFailed(ILogger logger, Exception exception, string digest);
}

/// <summary>What a step changed in a cache, copied aside to be published: a delta, or the whole cache.</summary>
/// <param name="Staging">The staging directory, deleted once published or discarded.</param>
/// <param name="Delta">A delta over the snapshot the directory was at; false: the whole cache.</param>
/// <param name="Manifest">The directory as captured.</param>
/// <param name="Bytes">Bytes of the files copied.</param>
internal sealed record CacheCapture(string Staging, bool Delta, CacheManifest Manifest, long Bytes);
