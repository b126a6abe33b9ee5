using System.Text;
using Farm.Oci.Layers;
using static Farm.Oci.Tests.LayerTestSupport;

namespace Farm.Oci.Tests;

public sealed class LayerWriterTests
{
    private static readonly DateTimeOffset Epoch = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    /// <summary>The same content, created in a different order with different (later than the clamp) times.</summary>
    private static void MakeTree(string root, long mtime, bool reverse)
    {
        var files = Enumerable.Range(0, 40).Select(i => ($"d{i % 4}/sub/f{i}.txt", new string((char)('a' + (i % 26)), 1000 * i))).ToList();
        if (reverse)
        {
            files.Reverse();
        }

        foreach (var (rel, content) in files)
        {
            WriteFile(Path.Combine(root, rel), content, mtime: mtime);
        }

        // Above one 1 MiB chunk, so parallel gzip joins several pieces.
        var big = new byte[3 << 20];
        new Random(42).NextBytes(big.AsSpan(0, 1 << 20));
        File.WriteAllBytes(Path.Combine(root, "big.bin"), big);
        File.CreateSymbolicLink(Path.Combine(root, "link"), "d0/sub/f0.txt");
        foreach (var dir in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            SetMtime(dir, mtime);
        }
    }

    [Theory]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.Zstd)]
    [InlineData(LayerCompression.None)]
    public async Task Same_tree_in_two_places_with_different_times_gives_the_same_digest(LayerCompression compression)
    {
        using var scratch = new ScratchDir();
        var a = scratch.Sub("a");
        var b = scratch.Sub("b-other-name");
        MakeTree(a, 1_800_000_000, reverse: false);
        MakeTree(b, 1_900_000_000, reverse: true);
        var options = new LayerWriteOptions { Compression = compression, ClampTimestamp = Epoch };

        var (ra, bytesA) = await WriteLayerAsync(a, options);
        var (rb, bytesB) = await WriteLayerAsync(b, options with { Parallelism = 1 });

        Assert.Equal(ra.DiffId, rb.DiffId);
        Assert.Equal(ra.Descriptor, rb.Descriptor);
        Assert.Equal(bytesA, bytesB);
        Assert.Equal(Digest.Sha256(bytesA), ra.Descriptor.Digest);
        Assert.Equal(bytesA.Length, ra.Descriptor.Size);
        Assert.Equal(MediaTypes.LayerMediaType(compression), ra.Descriptor.MediaType);

        using var tar = LayerReader.OpenDecompressed(new MemoryStream(bytesA), compression);
        using var plain = new MemoryStream();
        tar.CopyTo(plain);
        Assert.Equal(Digest.Sha256(plain.ToArray()), ra.DiffId);
        Assert.Equal(plain.Length, ra.UncompressedSize);
    }

    [Fact]
    public async Task Entries_are_sorted_parents_first_with_numeric_owners_and_clamped_times()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("t");
        WriteFile(Path.Combine(root, "b/z.txt"), "z", mtime: 1_000);
        WriteFile(Path.Combine(root, "a-b"), "x", mtime: 2_000_000_000);
        WriteFile(Path.Combine(root, "a/y"), "y", mtime: 1_000);
        SetMtime(Path.Combine(root, "a"), 1_000);
        SetMtime(Path.Combine(root, "b"), 1_000);

        var (result, bytes) = await WriteLayerAsync(root, new LayerWriteOptions { Compression = LayerCompression.None, ClampTimestamp = Epoch });

        using var reader = new System.Formats.Tar.TarReader(new MemoryStream(bytes));
        var entries = new List<System.Formats.Tar.TarEntry>();
        while (reader.GetNextEntry() is { } e)
        {
            entries.Add(e);
        }

        // Depth first, byte order within a directory: "a" and its children before "a-b".
        Assert.Equal(["a/", "a/y", "a-b", "b/", "b/z.txt"], entries.Select(e => e.Name));
        Assert.Equal(5, result.EntryCount);
        Assert.All(entries, e => Assert.Equal(System.Formats.Tar.TarEntryFormat.Ustar, e.Format));
        Assert.All(entries, e => Assert.Equal(string.Empty, ((System.Formats.Tar.PosixTarEntry)e).UserName));
        Assert.Equal(Epoch, entries[2].ModificationTime);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_000), entries[1].ModificationTime);
    }

    [Fact]
    public async Task Zero_timestamps_option_writes_every_time_as_zero()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("t");
        WriteFile(Path.Combine(root, "f"), "x", mtime: 1_234);
        var (_, bytes) = await WriteLayerAsync(root, new LayerWriteOptions { Compression = LayerCompression.None, ZeroTimestamps = true });
        using var reader = new System.Formats.Tar.TarReader(new MemoryStream(bytes));
        Assert.Equal(DateTimeOffset.UnixEpoch, reader.GetNextEntry()!.ModificationTime);
    }

    [Fact]
    public async Task Empty_tree_reports_no_entries()
    {
        using var scratch = new ScratchDir();
        var (result, _) = await WriteLayerAsync(scratch.Sub("empty"), new LayerWriteOptions());
        Assert.True(result.IsEmpty);
        Assert.Equal(0, result.EntryCount);
    }

    [Fact]
    public async Task Gzip_and_zstd_output_pass_the_reference_tools()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("t");
        MakeTree(root, 1_600_000_000, reverse: false);
        var expected = Run("tar", "-cf", "-", "-C", root, ".").Length > 0
            ? Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).Count()
            : 0;

        var (_, gz) = await WriteLayerAsync(root, new LayerWriteOptions { Compression = LayerCompression.Gzip });
        var gzPath = Path.Combine(scratch.Path, "l.tar.gz");
        await File.WriteAllBytesAsync(gzPath, gz);
        Run("gzip", "-t", gzPath);
        var listed = Run("tar", "-tzf", gzPath).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expected, listed.Length);
        Assert.Contains("big.bin", listed);

        var (_, zst) = await WriteLayerAsync(root, new LayerWriteOptions { Compression = LayerCompression.Zstd });
        var zstPath = Path.Combine(scratch.Path, "l.tar.zst");
        await File.WriteAllBytesAsync(zstPath, zst);
        Run("zstd", "-q", "-t", zstPath);
        var plain = Path.Combine(scratch.Path, "l.tar");
        Run("zstd", "-q", "-d", zstPath, "-o", plain);
        Assert.Equal(expected, Run("tar", "-tf", plain).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Overlay_upperdir_becomes_whiteouts_and_opaque_marker_that_umoci_applies()
    {
        using var scratch = new ScratchDir();
        var lower = scratch.Sub("lower");
        var upper = scratch.Sub("upper");
        var work = scratch.Sub("work");
        var merged = scratch.Sub("merged");
        WriteFile(Path.Combine(lower, "keep.txt"), "keep");
        WriteFile(Path.Combine(lower, "gone.txt"), "gone");
        WriteFile(Path.Combine(lower, "gonedir/a.txt"), "a");
        WriteFile(Path.Combine(lower, "redo/old.txt"), "old");

        Run("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={lower},upperdir={upper},workdir={work}", merged);
        try
        {
            File.Delete(Path.Combine(merged, "gone.txt"));
            Directory.Delete(Path.Combine(merged, "gonedir"), recursive: true);
            Directory.Delete(Path.Combine(merged, "redo"), recursive: true);
            Directory.CreateDirectory(Path.Combine(merged, "redo"));
            File.WriteAllText(Path.Combine(merged, "redo/new.txt"), "new");
            File.WriteAllText(Path.Combine(merged, "added.txt"), "added");
        }
        finally
        {
            Run("umount", merged);
        }

        var options = new LayerWriteOptions { ClampTimestamp = Epoch };
        var baseLayer = await WriteLayerAsync(lower, options);
        var diffLayer = await WriteLayerAsync(upper, options, LayerSourceKind.OverlayUpperDir);

        var names = TarNames(diffLayer.Bytes);
        Assert.Equal([".wh.gone.txt", ".wh.gonedir", "added.txt", "redo/", "redo/.wh..wh..opq", "redo/new.txt"], names);
        Assert.Equal(6, diffLayer.Result.EntryCount);
        Assert.DoesNotContain("overlay", Encoding.Latin1.GetString(LayerReaderTests.Decompress(diffLayer.Bytes)), StringComparison.Ordinal);

        var layout = Path.Combine(scratch.Path, "layout");
        WriteOciLayout(layout, "test", [baseLayer, diffLayer]);
        var bundle = Path.Combine(scratch.Path, "bundle");
        Run("umoci", "unpack", "--image", $"{layout}:test", bundle);
        var rootfs = Path.Combine(bundle, "rootfs");
        Assert.Equal(
            ["added.txt", "keep.txt", "redo", "redo/new.txt"],
            Directory.EnumerateFileSystemEntries(rootfs, "*", SearchOption.AllDirectories)
                .Select(p => Path.GetRelativePath(rootfs, p)).Order(StringComparer.Ordinal));

        // Farm's own reader agrees with umoci.
        var applied = scratch.Sub("applied");
        foreach (var (_, bytes) in new[] { baseLayer, diffLayer })
        {
            await LayerReader.ApplyAsync(new MemoryStream(bytes), applied, new LayerApplyOptions(), CancellationToken.None);
        }

        Assert.Equal(Snapshot(rootfs).Keys, Snapshot(applied).Keys);

        // As a lower dir for the worker's layer store, the whiteouts come back as overlay whiteouts.
        var lowerStore = scratch.Sub("store");
        await LayerReader.ApplyAsync(new MemoryStream(diffLayer.Bytes), lowerStore, new LayerApplyOptions { OverlayLowerDir = true }, CancellationToken.None);
        var store = Snapshot(lowerStore);
        Assert.StartsWith($"type={Interop.SIfChr:x}", store["gone.txt"], StringComparison.Ordinal);
        Assert.Contains("dev=0,0", store["gonedir"], StringComparison.Ordinal);
        Assert.Contains("xattr:trusted.overlay.opaque=79", store["redo"], StringComparison.Ordinal);
    }
}
