using System.Formats.Tar;
using System.Text;
using Farm.Oci.Layers;
using static Farm.Oci.Tests.LayerTestSupport;

namespace Farm.Oci.Tests;

public sealed class LayerReaderTests
{
    public static byte[] Decompress(byte[] layer)
    {
        using var s = LayerReader.OpenDecompressed(new MemoryStream(layer), null);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    [Theory]
    [InlineData(LayerCompression.Gzip)]
    [InlineData(LayerCompression.Zstd)]
    [InlineData(LayerCompression.None)]
    public async Task Round_trip_preserves_modes_owners_links_devices_and_binary_xattrs(LayerCompression compression)
    {
        using var scratch = new ScratchDir();
        var src = scratch.Sub("src");
        WriteFile(Path.Combine(src, "bin/tool"), "#!/bin/sh\n", mode: 0x9ED /* 04755 */);
        Chown(Path.Combine(src, "bin/tool"), 0, 0);
        Chmod(Path.Combine(src, "bin/tool"), 0x9ED); // chown clears setuid
        WriteFile(Path.Combine(src, "home/app/data.txt"), "data", mode: 0x180 /* 0600 */);
        Chown(Path.Combine(src, "home/app/data.txt"), 1234, 5678);
        Chown(Path.Combine(src, "home/app"), 1234, 5678);
        Chmod(Path.Combine(src, "home"), 0x3FF /* 01777 */);
        var link = Path.Combine(src, "home/app/hard");
        Assert.Equal(0, Interop.LinkAt(Interop.AtFdCwd, Path.Combine(src, "home/app/data.txt"), Interop.AtFdCwd, link, 0));
        File.CreateSymbolicLink(Path.Combine(src, "bin/sh-link"), "/bin/busybox");
        Chown(Path.Combine(src, "bin/sh-link"), 7, 8);
        Assert.Equal(0, Interop.MknodAt(Interop.AtFdCwd, Path.Combine(src, "fifo"), Interop.SIfIfo | 0x1A4, 0));
        Assert.Equal(0, Interop.MknodAt(Interop.AtFdCwd, Path.Combine(src, "null"), Interop.SIfChr | 0x1B6, Interop.MakeDev(1, 3)));
        // Binary value, as security.capability is: must survive byte for byte.
        Assert.Equal(0, Interop.SetXattr(Path.Combine(src, "bin/tool"), "trusted.farm-bin", [0x01, 0x00, 0xff, 0x80, 0x02]));
        Assert.Equal(0, Interop.SetXattr(Path.Combine(src, "home/app/data.txt"), "user.note", Encoding.UTF8.GetBytes("héllo")));
        WriteFile(Path.Combine(src, new string('n', 120) + "/" + new string('m', 150)), "long names go to PAX");
        foreach (var p in Directory.EnumerateFileSystemEntries(src, "*", SearchOption.AllDirectories))
        {
            SetMtime(p, 1_650_000_000);
        }

        var (result, bytes) = await WriteLayerAsync(src, new LayerWriteOptions { Compression = compression });
        var dest = scratch.Sub("dest");
        var applied = await LayerReader.ApplyAsync(new MemoryStream(bytes), dest, new LayerApplyOptions { AllowDevices = true }, CancellationToken.None);

        Assert.Equal(result.DiffId, applied.DiffId);
        Assert.Equal(result.EntryCount, applied.EntryCount);
        var expected = Snapshot(src);
        var actual = Snapshot(dest);
        Assert.Equal(Describe(expected), Describe(actual));
        Assert.Contains("mode=9ed", actual["bin/tool"], StringComparison.Ordinal);
        Assert.Contains("xattr:trusted.farm-bin=0100FF8002", actual["bin/tool"], StringComparison.Ordinal);
        Assert.Contains("link-group=home/app/data.txt", actual["home/app/hard"], StringComparison.Ordinal);
        Assert.Contains("uid=7 gid=8", actual["bin/sh-link"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Whiteouts_remove_lower_content_but_not_entries_of_the_same_layer()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("root");
        WriteFile(Path.Combine(root, "etc/old.conf"), "old");
        WriteFile(Path.Combine(root, "etc/keep.conf"), "keep");
        WriteFile(Path.Combine(root, "var/cache/x/y"), "y");
        WriteFile(Path.Combine(root, "var/cache/z"), "z");

        var layer = Tar(w =>
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/.wh.old.conf"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "var/cache/"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "var/cache/a") { DataStream = Data("new") });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "var/cache/.wh..wh..opq"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "new.txt") { DataStream = Data("n") });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, ".wh.new.txt"));
        });
        await LayerReader.ApplyAsync(new MemoryStream(layer), root, new LayerApplyOptions(), CancellationToken.None);

        Assert.Equal(
            ["etc", "etc/keep.conf", "new.txt", "var", "var/cache", "var/cache/a"],
            Snapshot(root).Keys);
        Assert.Equal("new", await File.ReadAllTextAsync(Path.Combine(root, "var/cache/a")));
    }

    private static MemoryStream Data(string text) => new(Encoding.UTF8.GetBytes(text));

    private static byte[] Tar(Action<TarWriter> write)
    {
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(w);
        }

        return ms.ToArray();
    }

    public static TheoryData<string, Type> HostileLayers => new()
    {
        { "dotdot", typeof(LayerPathEscapeException) },
        { "dotdot-etc", typeof(LayerPathEscapeException) },
        { "absolute", typeof(LayerAbsolutePathException) },
        { "symlink-absolute", typeof(LayerSymlinkTraversalException) },
        { "symlink-relative", typeof(LayerSymlinkTraversalException) },
        { "hardlink-outside", typeof(LayerHardlinkTargetException) },
        { "hardlink-absolute", typeof(LayerHardlinkTargetException) },
        { "hardlink-absent", typeof(LayerHardlinkTargetException) },
        { "hardlink-through-symlink", typeof(LayerHardlinkTargetException) },
        { "symlink-chain-out", typeof(LayerSymlinkTraversalException) },
        { "symlink-loop", typeof(LayerSymlinkTraversalException) },
        { "device", typeof(LayerDeviceNotAllowedException) },
    };

    private static byte[] Hostile(string kind) => Tar(w =>
    {
        void File(string name, string content = "evil") =>
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = Data(content) });
        void Symlink(string name, string target) =>
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target });
        void Hardlink(string name, string target) =>
            w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = target });

        File("innocent.txt", "fine"); // applied before the hostile entry: the refusal is per entry
        switch (kind)
        {
            case "dotdot":
                File("../outside/x");
                break;
            case "dotdot-etc":
                File("a/../../../etc/x");
                break;
            case "absolute":
                File("/etc/x");
                break;
            case "symlink-absolute":
                Symlink("a", "/etc");
                File("a/passwd");
                break;
            case "symlink-relative":
                Symlink("a", "../..");
                File("a/x");
                break;
            case "hardlink-outside":
                Hardlink("h", "../outside/sentinel.txt");
                break;
            case "hardlink-absolute":
                Hardlink("h", "/etc/passwd");
                break;
            case "hardlink-absent":
                Hardlink("h", "no/such/file");
                break;
            case "hardlink-through-symlink":
                Symlink("out", "../outside");
                Hardlink("h", "out/sentinel.txt");
                break;
            case "symlink-chain-out":
                // Each link looks harmless alone; together they climb out.
                Symlink("a", "b/c");
                w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "b/"));
                Symlink("b/c", "../../outside");
                File("a/sentinel.txt");
                break;
            case "symlink-loop":
                Symlink("loop", "loop");
                File("loop/x");
                break;
            case "device":
                w.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "dev/null") { DeviceMajor = 1, DeviceMinor = 3 });
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    });

    [Theory]
    [MemberData(nameof(HostileLayers))]
    public async Task Hostile_layer_is_refused_and_nothing_outside_the_target_changes(string kind, Type expected)
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("root");
        var outside = scratch.Sub("outside");
        WriteFile(Path.Combine(outside, "sentinel.txt"), "untouched");
        var before = Snapshot(scratch.Path, exclude: root);
        var etcBefore = Snapshot("/etc");

        var error = await Assert.ThrowsAnyAsync<Exception>(() =>
            LayerReader.ApplyAsync(new MemoryStream(Hostile(kind)), root, new LayerApplyOptions(), CancellationToken.None));

        Assert.IsType(expected, error);
        Assert.StartsWith("FARM21", error.Message, StringComparison.Ordinal);
        Assert.Equal(Describe(before), Describe(Snapshot(scratch.Path, exclude: root)));
        Assert.Equal(Describe(etcBefore), Describe(Snapshot("/etc")));
        Assert.False(System.IO.File.Exists("/etc/x"));
        Assert.False(System.IO.File.Exists(Path.Combine(Path.GetDirectoryName(scratch.Path)!, "etc", "x")));
    }

    [Fact]
    public async Task Devices_are_created_when_allowed()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("root");
        await LayerReader.ApplyAsync(new MemoryStream(Hostile("device")), root, new LayerApplyOptions { AllowDevices = true }, CancellationToken.None);
        Assert.Contains("dev=1,3", Snapshot(root)["dev/null"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Entries_beneath_a_symlink_that_stays_inside_the_root_land_where_it_leads()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("root");
        var outside = scratch.Sub("outside");
        WriteFile(Path.Combine(outside, "sentinel.txt"), "untouched");
        // A merged-/usr system as a tar of another tool may list it: the links, then files through them.
        var layer = Tar(w =>
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "usr/lib/"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "lib") { LinkName = "usr/lib" });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "lib/x") { DataStream = Data("x") });
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "usr/lib64") { LinkName = "./lib" });
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "lib64") { LinkName = "usr/lib64" });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "lib64/deep/y") { DataStream = Data("y") });
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "opt/"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "opt/up") { LinkName = "../usr" });
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "opt/up/z") { DataStream = Data("z") });
            w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "lib/x-again") { LinkName = "lib64/deep/y" });
        });

        await LayerReader.ApplyAsync(new MemoryStream(layer), root, new LayerApplyOptions(), CancellationToken.None);

        Assert.Equal("x", await File.ReadAllTextAsync(Path.Combine(root, "usr/lib/x")));
        Assert.Equal("y", await File.ReadAllTextAsync(Path.Combine(root, "usr/lib/deep/y")));
        Assert.Equal("z", await File.ReadAllTextAsync(Path.Combine(root, "usr/z")));
        Assert.Equal("y", await File.ReadAllTextAsync(Path.Combine(root, "usr/lib/x-again")));
        Assert.Equal("usr/lib", new FileInfo(Path.Combine(root, "lib")).LinkTarget);
        Assert.Equal("usr/lib64", new FileInfo(Path.Combine(root, "lib64")).LinkTarget);
        Assert.Equal("../usr", new FileInfo(Path.Combine(root, "opt/up")).LinkTarget);
        Assert.Equal("untouched", await File.ReadAllTextAsync(Path.Combine(outside, "sentinel.txt")));
    }

    [Fact]
    public async Task A_later_layer_writes_and_whites_out_through_a_symlink_of_an_earlier_one()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("root");
        WriteFile(Path.Combine(root, "usr/lib/old.so"), "old");
        File.CreateSymbolicLink(Path.Combine(root, "lib"), "usr/lib");
        var layer = Tar(w =>
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "lib/.wh.old.so"));
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "lib/new.so") { DataStream = Data("new") });
        });

        await LayerReader.ApplyAsync(new MemoryStream(layer), root, new LayerApplyOptions(), CancellationToken.None);

        Assert.False(File.Exists(Path.Combine(root, "usr/lib/old.so")));
        Assert.Equal("new", await File.ReadAllTextAsync(Path.Combine(root, "usr/lib/new.so")));
        Assert.Equal("usr/lib", new FileInfo(Path.Combine(root, "lib")).LinkTarget);
    }

    [Fact]
    public async Task Symlink_replaced_by_a_file_is_not_written_through()
    {
        using var scratch = new ScratchDir();
        var root = scratch.Sub("root");
        var outside = scratch.Sub("outside");
        WriteFile(Path.Combine(outside, "sentinel.txt"), "untouched");
        File.CreateSymbolicLink(Path.Combine(root, "s"), Path.Combine(outside, "sentinel.txt"));
        var layer = Tar(w => w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "s") { DataStream = Data("replaced") }));

        await LayerReader.ApplyAsync(new MemoryStream(layer), root, new LayerApplyOptions(), CancellationToken.None);

        Assert.Equal("untouched", await File.ReadAllTextAsync(Path.Combine(outside, "sentinel.txt")));
        Assert.Equal("replaced", await File.ReadAllTextAsync(Path.Combine(root, "s")));
        Assert.Null(new FileInfo(Path.Combine(root, "s")).LinkTarget);
    }

    [Fact]
    public async Task Declared_compression_that_does_not_match_the_bytes_is_refused()
    {
        var layer = Tar(w => w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "f") { DataStream = Data("x") }));
        using var scratch = new ScratchDir();
        await Assert.ThrowsAsync<LayerCompressionException>(() => LayerReader.ApplyAsync(
            new MemoryStream(layer), scratch.Path, new LayerApplyOptions { Compression = LayerCompression.Gzip }, CancellationToken.None));
    }
}
