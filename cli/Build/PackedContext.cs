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
    private PackedContext(string tarPath, Descriptor tar, ContextIndex index, byte[] indexBytes, JsonObject packedEvent)
    {
        TarPath = tarPath;
        Tar = tar;
        Index = index;
        IndexBytes = indexBytes;
        PackedEvent = packedEvent;
    }

    public string TarPath { get; }

    public Descriptor Tar { get; }

    public ContextIndex Index { get; }

    public byte[] IndexBytes { get; }

    public Descriptor IndexDescriptor => new() { MediaType = "application/vnd.farm.context.index.v1+jsonl", Digest = Digest.Sha256(IndexBytes), Size = IndexBytes.Length };

    /// <summary>The <c>ContextPacked</c> event: <c>files</c>, <c>bytes</c>, <c>digest</c>, <c>durationMs</c>.</summary>
    public JsonObject PackedEvent { get; }

    /// <summary>
    /// Packs <paramref name="contextDirectory"/> with its <c>.dockerignore</c> (beside the Dockerfile or in the
    /// context, as BuildKit looks) into a temporary file in <paramref name="tempDirectory"/>. A context that takes
    /// more than a second shows what has been packed so far on <paramref name="status"/>, twice a second.
    /// </summary>
    public static async Task<PackedContext> PackAsync(string contextDirectory, string dockerfilePath, string tempDirectory, TextWriter? status, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var ignorePath = DockerIgnoreFile.Locate(contextDirectory, dockerfilePath);
        var ignore = ignorePath is null
            ? PatternMatcher.Empty
            : (await DockerIgnoreFile.LoadAsync(ignorePath, cancellationToken).ConfigureAwait(false)).CreateMatcher();
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
                index = await BuildContextPacker.PackAsync(contextDirectory, ignore, file, reporter, cancellationToken).ConfigureAwait(false);
                file.Position = 0;
                digest = await Digest.Sha256Async(file, cancellationToken).ConfigureAwait(false);
                size = file.Length;
            }

            var files = index.Entries.Count(e => e.Type == ContextEntryType.File);
            var packed = BuildProgress.Typed("ContextPacked", new JsonObject
            {
                ["files"] = files,
                ["bytes"] = size,
                ["digest"] = digest.ToString(),
                ["durationMs"] = Math.Round(stopwatch.Elapsed.TotalMilliseconds, 1),
            });
            return new PackedContext(path, new Descriptor { MediaType = Farm.Oci.MediaTypes.OciLayerTar, Digest = digest, Size = size }, index, index.ToBytes(), packed);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    public FileStream OpenTar() => new(TarPath, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true);

    public ValueTask DisposeAsync()
    {
        File.Delete(TarPath);
        return ValueTask.CompletedTask;
    }

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
