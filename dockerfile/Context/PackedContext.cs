using System.Diagnostics;
using Farm.Dockerfile.Ignore;
using Farm.Oci;

namespace Farm.Dockerfile.Context;

/// <summary>A packed build context: the deterministic tar (a temporary file until stored) and its index.</summary>
public sealed class PackedContext : IAsyncDisposable
{
    private PackedContext(string? tarPath, Descriptor tar, ContextIndex index, byte[] indexBytes, ContextPacked packed)
    {
        TarPath = tarPath;
        Tar = tar;
        Index = index;
        IndexBytes = indexBytes;
        Packed = packed;
    }

    /// <summary>The tar's temporary file; null when the stat cache knew the context and the store has its tar.</summary>
    public string? TarPath { get; }

    public Descriptor Tar { get; }

    public ContextIndex Index { get; }

    public byte[] IndexBytes { get; }

    public Descriptor IndexDescriptor => new() { MediaType = ContextIndex.MediaType, Digest = Digest.Sha256(IndexBytes), Size = IndexBytes.Length };

    /// <summary>What was packed, for the <c>ContextPacked</c> event.</summary>
    public ContextPacked Packed { get; }

    /// <summary>
    /// Packs <paramref name="contextDirectory"/> with its <c>.dockerignore</c> (beside the Dockerfile or in the
    /// context, as BuildKit looks) into a temporary file in <paramref name="tempDirectory"/>. It reports what has
    /// been packed so far to <paramref name="progress"/>. With a
    /// <paramref name="cache"/>, a context whose files all stat as when it was last packed, and whose tar
    /// <paramref name="storedSize"/> finds in the store, is neither read nor written (<see cref="TarPath"/> null).
    /// </summary>
    public static async Task<PackedContext> PackAsync(
        string contextDirectory,
        string dockerfilePath,
        string tempDirectory,
        IProgress<ContextProgress>? progress,
        CancellationToken cancellationToken,
        ContextStatCache? cache = null,
        Func<Digest, CancellationToken, Task<long?>>? storedSize = null)
    {
        var stopwatch = Stopwatch.StartNew();
        var ignorePath = DockerIgnoreFile.Locate(contextDirectory, dockerfilePath);
        var ignore = ignorePath is null
            ? PatternMatcher.Empty
            : (await DockerIgnoreFile.LoadAsync(ignorePath, cancellationToken).ConfigureAwait(false)).CreateMatcher();
        var plan = BuildContextPacker.Plan(contextDirectory, ignore, cancellationToken);
        var key = ContextStatCache.Key(contextDirectory, dockerfilePath);
        var fingerprint = cache is null ? null : plan.Fingerprint();
        if (cache?.Find(key, fingerprint!) is var (cachedTar, cachedIndex, cachedIndexBytes)
            && storedSize is not null
            && await storedSize(cachedTar.Digest, cancellationToken).ConfigureAwait(false) == cachedTar.Size)
        {
            return new PackedContext(null, cachedTar, cachedIndex, cachedIndexBytes, PackedOf(plan, cachedTar, stopwatch));
        }

        var packedAt = DateTimeOffset.UtcNow;
        Directory.CreateDirectory(tempDirectory);
        var path = Path.Combine(tempDirectory, $".context-{Guid.NewGuid():N}.tar");
        try
        {
            ContextIndex index;
            Digest digest;
            long size;
            var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                index = await BuildContextPacker.PackAsync(plan, file, progress, cancellationToken).ConfigureAwait(false);
                file.Position = 0;
                digest = await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false);
                size = file.Length;
            }

            var tar = new Descriptor { MediaType = Farm.Oci.MediaTypes.OciLayerTar, Digest = digest, Size = size };
            var indexBytes = index.ToBytes();
            cache?.Record(key, plan, fingerprint!, tar, index, indexBytes, packedAt);
            return new PackedContext(path, tar, index, indexBytes, PackedOf(plan, tar, stopwatch));
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    public FileStream OpenTar() => new(TarPath ?? throw new InvalidOperationException("the context's tar was not written: the store has it"), FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);

    public ValueTask DisposeAsync()
    {
        if (TarPath is not null)
        {
            File.Delete(TarPath);
        }

        return ValueTask.CompletedTask;
    }

    private static ContextPacked PackedOf(ContextPlan plan, Descriptor tar, Stopwatch stopwatch) =>
        new(plan.Entries.Count(e => e.Type == ContextEntryType.File), tar.Size, tar.Digest, stopwatch.Elapsed);
}

/// <summary>A packed context: its regular files, the tar's size and digest, and how long packing took.</summary>
public sealed record ContextPacked(int Files, long Bytes, Digest Digest, TimeSpan Duration);
