using System.Diagnostics;
using System.Text.Json.Nodes;
using Farm.Cli.Progress;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Ignore;
using Farm.Oci;

namespace Farm.Cli.Build;

/// <summary>A packed build context: the deterministic tar (a temporary file until stored) and its index.</summary>
internal sealed class PackedContext : IAsyncDisposable
{
    private PackedContext(string? tarPath, Descriptor tar, ContextIndex index, byte[] indexBytes, JsonObject packedEvent)
    {
        TarPath = tarPath;
        Tar = tar;
        Index = index;
        IndexBytes = indexBytes;
        PackedEvent = packedEvent;
    }

    /// <summary>The tar's temporary file; null when the stat cache knew the context and the store has its tar.</summary>
    public string? TarPath { get; }

    public Descriptor Tar { get; }

    public ContextIndex Index { get; }

    public byte[] IndexBytes { get; }

    public Descriptor IndexDescriptor => new() { MediaType = ContextIndex.MediaType, Digest = Digest.Sha256(IndexBytes), Size = IndexBytes.Length };

    /// <summary>The <c>ContextPacked</c> event: <c>files</c>, <c>bytes</c>, <c>digest</c>, <c>durationMs</c>.</summary>
    public JsonObject PackedEvent { get; }

    /// <summary>
    /// Packs <paramref name="contextDirectory"/> with its <c>.dockerignore</c> (beside the Dockerfile or in the
    /// context, as BuildKit looks) into a temporary file in <paramref name="tempDirectory"/>. A context that takes
    /// more than a second shows what has been packed so far on <paramref name="status"/>, twice a second. With a
    /// <paramref name="cache"/>, a context whose files all stat as when it was last packed, and whose tar
    /// <paramref name="storedSize"/> finds in the store, is neither read nor written (<see cref="TarPath"/> null).
    /// </summary>
    public static async Task<PackedContext> PackAsync(
        string contextDirectory,
        string dockerfilePath,
        string tempDirectory,
        TextWriter? status,
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
        BuildTimings.Mark("context walked");
        var key = ContextStatCache.Key(contextDirectory, dockerfilePath);
        var fingerprint = cache is null ? null : plan.Fingerprint();
        BuildTimings.Mark("context fingerprinted");
        if (cache?.Find(key, fingerprint!) is var (cachedTar, cachedIndex, cachedIndexBytes)
            && storedSize is not null
            && await storedSize(cachedTar.Digest, cancellationToken).ConfigureAwait(false) == cachedTar.Size)
        {
            BuildTimings.Mark("context found in the stat cache and the store");
            return new PackedContext(null, cachedTar, cachedIndex, cachedIndexBytes, PackedEventOf(plan, cachedTar, stopwatch));
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
                var reporter = new SlowProgress(status, stopwatch);
                index = await BuildContextPacker.PackAsync(plan, file, reporter, cancellationToken).ConfigureAwait(false);
                file.Position = 0;
                digest = await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false);
                size = file.Length;
            }

            var tar = new Descriptor { MediaType = Farm.Oci.MediaTypes.OciLayerTar, Digest = digest, Size = size };
            var indexBytes = index.ToBytes();
            cache?.Record(key, plan, fingerprint!, tar, index, indexBytes, packedAt);
            return new PackedContext(path, tar, index, indexBytes, PackedEventOf(plan, tar, stopwatch));
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

    private static JsonObject PackedEventOf(ContextPlan plan, Descriptor tar, Stopwatch stopwatch) =>
        BuildProgress.Typed("ContextPacked", new JsonObject
        {
            ["files"] = plan.Entries.Count(e => e.Type == ContextEntryType.File),
            ["bytes"] = tar.Size,
            ["digest"] = tar.Digest.ToString(),
            ["durationMs"] = Math.Round(stopwatch.Elapsed.TotalMilliseconds, 1),
        });

    /// <summary>Silent for a quick context; for a slow one a status line on standard error every half second.</summary>
    private sealed class SlowProgress(TextWriter? status, Stopwatch stopwatch) : IProgress<ContextProgress>
    {
        private TimeSpan _last = TimeSpan.FromSeconds(0.5);

        public void Report(ContextProgress value)
        {
            if (status is null || value.Done || stopwatch.Elapsed < TimeSpan.FromSeconds(1) || stopwatch.Elapsed - _last < TimeSpan.FromSeconds(0.5))
            {
                return;
            }

            _last = stopwatch.Elapsed;
            status.Write($"farm: packing the build context: {value.Files} files, {BuildProgress.HumanBytes(value.Bytes)} ({BuildProgress.Seconds(stopwatch.Elapsed)})\n");
            status.Flush();
        }
    }
}
