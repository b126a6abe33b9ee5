using System.Diagnostics;
using System.Runtime.InteropServices;
using Farm.Worker.Copy;

namespace Farm.Worker.Tests;

public sealed class CopyOperationTests : IDisposable
{
    private readonly CopySandbox _box = new();
    private readonly HttpClient _http = new();
    private readonly CopyOperation _copy;

    public CopyOperationTests()
    {
        _copy = new CopyOperation(_http);
    }

    public void Dispose()
    {
        _http.Dispose();
        _box.Dispose();
    }

    private Task<CopyResult> Copy(CopyRequest request) => _copy.CopyAsync(request, CancellationToken.None);

    [Fact]
    public async Task File_into_an_existing_directory_keeps_its_name()
    {
        _box.WriteContext("a.txt", "hello");
        Directory.CreateDirectory(_box.InTarget("app"));

        var result = await Copy(_box.Request("/app", "a.txt"));

        Assert.Equal("hello", File.ReadAllText(_box.InTarget("app/a.txt")));
        Assert.Equal(1, result.Files);
        Assert.Equal(5, result.Bytes);
    }

    [Fact]
    public async Task File_to_a_new_directory_ending_in_slash_creates_it_owned_by_root()
    {
        var source = _box.WriteContext("a.txt", "hello");
        Posix.Chown(source, 1234, 1234);

        await Copy(_box.Request("/new/dir/", "a.txt"));

        Assert.Equal("hello", File.ReadAllText(_box.InTarget("new/dir/a.txt")));
        Assert.Equal((0u, 0u), Owner(_box.InTarget("new/dir")));
        Assert.Equal(0x1EDu, Posix.Stat(_box.InTarget("new/dir")).Mode & 0xFFF);
    }

    [Fact]
    public async Task File_to_another_name_is_written_exactly_there()
    {
        _box.WriteContext("a.txt", "hello");

        await Copy(_box.Request("/opt/conf/b.conf", "a.txt"));

        Assert.Equal("hello", File.ReadAllText(_box.InTarget("opt/conf/b.conf")));
        Assert.False(Directory.Exists(_box.InTarget("opt/conf/b.conf")));
    }

    [Fact]
    public async Task Directory_source_copies_its_contents_not_itself()
    {
        _box.WriteContext("src/x.txt", "x");
        _box.WriteContext("src/sub/y.txt", "y");

        var result = await Copy(_box.Request("/app", "src"));

        Assert.Equal(["app", "app/sub", "app/sub/y.txt", "app/x.txt"], _box.TargetTree());
        Assert.Equal(2, result.Files);
    }

    [Fact]
    public async Task Wildcards_and_several_sources_go_into_a_directory_ending_in_slash()
    {
        _box.WriteContext("a.txt", "a");
        _box.WriteContext("b.txt", "b");
        _box.WriteContext("c.md", "c");
        _box.WriteContext("lib/one.cs", "1");
        _box.WriteContext("lib/two.cs", "2");
        _box.WriteContext("lib/[x].cs", "3");

        await Copy(_box.Request("/out/", "*.txt", "lib/[o-z]*.cs", "c.?d"));

        Assert.Equal(["out", "out/a.txt", "out/b.txt", "out/c.md", "out/one.cs", "out/two.cs"], _box.TargetTree());
    }

    [Fact]
    public async Task Several_sources_to_a_destination_without_slash_are_refused_and_nothing_is_written()
    {
        _box.WriteContext("a.txt", "a");
        _box.WriteContext("b.txt", "b");

        var e = await Assert.ThrowsAsync<CopyDestinationException>(() => Copy(_box.Request("/out", "a.txt", "b.txt")));

        Assert.StartsWith("FARM1205:", e.Message);
        Assert.Contains("'/out/'", e.Message);
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task A_wildcard_matching_several_files_needs_a_directory_destination()
    {
        _box.WriteContext("a.txt", "a");
        _box.WriteContext("b.txt", "b");

        await Assert.ThrowsAsync<CopyDestinationException>(() => Copy(_box.Request("/out", "*.txt")));
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task A_pattern_that_matches_nothing_is_named_in_the_error()
    {
        _box.WriteContext("a.txt", "a");

        var e = await Assert.ThrowsAsync<CopySourceNotFoundException>(() => Copy(_box.Request("/out/", "a.txt", "*.nothing")));

        Assert.StartsWith("FARM1204:", e.Message);
        Assert.Contains("'*.nothing'", e.Message);
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task Chown_by_name_uses_the_target_roots_passwd_and_group()
    {
        _box.WriteTarget("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
        _box.WriteTarget("etc/group", "root:x:0:\nstaff:x:50:app\n");
        _box.WriteContext("src/a.txt", "a");

        await Copy(_box.Request("/srv/app", "src") with { Chown = "app" });
        await Copy(_box.Request("/srv/other/", "src/a.txt") with { Chown = "app:staff" });

        Assert.Equal((1000u, 1001u), Owner(_box.InTarget("srv/app/a.txt")));
        Assert.Equal((1000u, 1001u), Owner(_box.InTarget("srv/app")));
        Assert.Equal((1000u, 50u), Owner(_box.InTarget("srv/other/a.txt")));
        Assert.Equal((1000u, 50u), Owner(_box.InTarget("srv/other")));
    }

    [Theory]
    [InlineData("42:43", 42u, 43u)]
    [InlineData("42", 42u, 42u)]
    public async Task Chown_numeric(string chown, uint uid, uint gid)
    {
        _box.WriteContext("a.txt", "a");

        await Copy(_box.Request("/a.txt", "a.txt") with { Chown = chown });

        Assert.Equal((uid, gid), Owner(_box.InTarget("a.txt")));
    }

    [Fact]
    public async Task Chown_to_an_unknown_user_is_refused()
    {
        _box.WriteTarget("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
        _box.WriteContext("a.txt", "a");

        var e = await Assert.ThrowsAsync<CopyOptionException>(() => Copy(_box.Request("/a.txt", "a.txt") with { Chown = "nobody-here" }));

        Assert.Contains("nobody-here", e.Message);
        Assert.False(File.Exists(_box.InTarget("a.txt")));
    }

    [Fact]
    public async Task Chmod_applies_to_copied_files_and_directories()
    {
        var file = _box.WriteContext("src/sub/run.sh", "#!/bin/sh");
        Posix.Chmod(file, 0x180);

        await Copy(_box.Request("/app", "src") with { Chmod = "0755" });

        Assert.Equal(0x1EDu, Posix.Stat(_box.InTarget("app/sub/run.sh")).Mode & 0xFFF);
        Assert.Equal(0x1EDu, Posix.Stat(_box.InTarget("app/sub")).Mode & 0xFFF);
    }

    [Fact]
    public async Task Symbolic_chmod_adds_execute()
    {
        var file = _box.WriteContext("run.sh", "#!/bin/sh");
        Posix.Chmod(file, 0x1A4);

        await Copy(_box.Request("/run.sh", "run.sh") with { Chmod = "u+x,go-r" });

        Assert.Equal(0x1C0u, Posix.Stat(_box.InTarget("run.sh")).Mode & 0xFFF);
    }

    [Fact]
    public async Task Without_chown_everything_is_owned_by_root_and_modes_and_mtimes_are_kept()
    {
        var file = _box.WriteContext("src/a.txt", "a");
        var dir = _box.InContext("src");
        Posix.Chown(file, 1234, 4321);
        Posix.Chown(dir, 1234, 4321);
        Posix.Chmod(file, 0x1E4);
        var mtime = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(file, mtime);

        await Copy(_box.Request("/app/", "src"));

        Assert.Equal((0u, 0u), Owner(_box.InTarget("app/a.txt")));
        Assert.Equal((0u, 0u), Owner(_box.InTarget("app")));
        Assert.Equal(0x1E4u, Posix.Stat(_box.InTarget("app/a.txt")).Mode & 0xFFF);
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(_box.InTarget("app/a.txt")));
    }

    [Fact]
    public async Task Symlinks_inside_a_copied_directory_stay_symlinks()
    {
        _box.WriteContext("src/real.txt", "real");
        File.CreateSymbolicLink(_box.InContext("src/link"), "real.txt");
        File.CreateSymbolicLink(_box.InContext("src/abs"), "/etc/hostname");

        var result = await Copy(_box.Request("/app", "src"));

        Assert.Equal("real.txt", new FileInfo(_box.InTarget("app/link")).LinkTarget);
        Assert.Equal("/etc/hostname", new FileInfo(_box.InTarget("app/abs")).LinkTarget);
        Assert.Equal(2, result.Symlinks);
    }

    [Fact]
    public async Task A_named_symlink_source_is_followed_inside_the_context()
    {
        _box.WriteContext("dir/real.txt", "real");
        File.CreateSymbolicLink(_box.InContext("alias"), "dir/real.txt");

        await Copy(_box.Request("/out/", "alias"));

        Assert.Equal("real", File.ReadAllText(_box.InTarget("out/alias")));
        Assert.Null(new FileInfo(_box.InTarget("out/alias")).LinkTarget);
    }

    [Fact]
    public async Task Hardlinks_within_a_copy_are_preserved()
    {
        var a = _box.WriteContext("src/a", "same");
        Posix.Link(a, _box.InContext("src/b"));

        await Copy(_box.Request("/app", "src"));

        Assert.Equal(Posix.Inode(_box.InTarget("app/a")), Posix.Inode(_box.InTarget("app/b")));
    }

    [Fact]
    public async Task A_source_above_the_context_is_refused_with_FARM1203_and_nothing_is_written()
    {
        File.WriteAllText(Path.Combine(_box.Root, "x"), "secret");
        _box.WriteContext("a.txt", "a");

        var e = await Assert.ThrowsAsync<SourceOutsideContextException>(() => Copy(_box.Request("/out/", "a.txt", "../x")));

        Assert.StartsWith("FARM1203: COPY source '../x' is outside the build context", e.Message);
        Assert.Equal("FARM1203", e.Code);
        Assert.Empty(_box.TargetTree());
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("/etc/passwd")]
    public async Task A_symlink_out_of_the_context_is_refused_with_FARM1203(string linkTarget)
    {
        File.WriteAllText(Path.Combine(_box.Root, "x"), "secret");
        File.CreateSymbolicLink(_box.InContext("escape"), linkTarget);
        Directory.CreateDirectory(_box.InContext("dir"));
        File.CreateSymbolicLink(_box.InContext("dir/up"), "../..");

        var direct = await Assert.ThrowsAsync<SourceOutsideContextException>(() => Copy(_box.Request("/out", "escape")));
        var through = await Assert.ThrowsAsync<SourceOutsideContextException>(() => Copy(_box.Request("/out/", "dir/up/x")));

        Assert.Contains("'escape'", direct.Message);
        Assert.Equal("FARM1203", through.Code);
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task A_symlink_loop_is_refused_with_FARM1203_as_the_cache_key_refuses_it()
    {
        File.CreateSymbolicLink(_box.InContext("loop"), "loop");
        File.CreateSymbolicLink(_box.InContext("ping"), "pong");
        File.CreateSymbolicLink(_box.InContext("pong"), "ping/x");

        var self = await Assert.ThrowsAsync<SourceOutsideContextException>(() => Copy(_box.Request("/out/", "loop")));
        var pair = await Assert.ThrowsAsync<SourceOutsideContextException>(() => Copy(_box.Request("/out/", "ping/a")));

        Assert.StartsWith("FARM1203: COPY source 'loop' has too many levels of symbolic links", self.Message);
        Assert.Equal("FARM1203", pair.Code);
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task A_malformed_exclude_is_refused_with_FARM1206()
    {
        _box.WriteContext("a.txt", "a");

        var e = await Assert.ThrowsAsync<CopyOptionException>(() => Copy(_box.Request("/out/", "a.txt") with { Excludes = ["[a"] }));

        Assert.StartsWith("FARM1206: --exclude pattern '[a' is malformed", e.Message);
        Assert.Empty(_box.TargetTree());
    }

    [Fact]
    public async Task Copying_the_context_root_into_a_new_directory_makes_it_0755_whatever_the_extracted_roots_mode()
    {
        // The context tar has no entry for its root, so the cache key cannot know the mode of the directory the worker
        // extracted it into: the root counts as 0755 on both sides.
        _box.WriteContext("a.txt", "a");
        Posix.Chmod(_box.Context, 0x1C0);

        await Copy(_box.Request("/app/", "."));

        Assert.Equal(0x1EDu, Posix.Stat(_box.InTarget("app")).Mode & 0xFFF);
        Assert.Equal("a", File.ReadAllText(_box.InTarget("app/a.txt")));
    }

    [Fact]
    public async Task A_leading_slash_in_a_source_means_the_context_root()
    {
        _box.WriteContext("etc/app.conf", "mine");

        await Copy(_box.Request("/conf/", "/etc/app.conf"));

        Assert.Equal("mine", File.ReadAllText(_box.InTarget("conf/app.conf")));
    }

    [Fact]
    public async Task A_destination_symlink_is_followed_inside_the_target_root()
    {
        var unique = "farm-copy-test-" + Guid.NewGuid().ToString("N") + ".txt";
        _box.WriteContext(unique, "inside");
        Directory.CreateDirectory(_box.InTarget("etc"));
        File.CreateSymbolicLink(_box.InTarget("app"), "/etc");
        File.CreateSymbolicLink(_box.InTarget("up"), "../../../../../../etc");

        await Copy(_box.Request("/app/", unique));
        await Copy(_box.Request("/up/copy2.txt", unique));

        Assert.Equal("inside", File.ReadAllText(_box.InTarget("etc/" + unique)));
        Assert.Equal("inside", File.ReadAllText(_box.InTarget("etc/copy2.txt")));
        Assert.False(File.Exists("/etc/" + unique));
        Assert.False(File.Exists("/etc/copy2.txt") && File.ReadAllText("/etc/copy2.txt") == "inside");
    }

    [Fact]
    public async Task A_relative_destination_is_relative_to_the_working_directory()
    {
        _box.WriteContext("a.txt", "a");

        await Copy(_box.Request(".", "a.txt") with { WorkingDirectory = "/srv/www" });

        Assert.Equal("a", File.ReadAllText(_box.InTarget("srv/www/a.txt")));
    }

    [Fact]
    public async Task Exclude_skips_matching_files()
    {
        _box.WriteContext("src/keep.cs", "k");
        _box.WriteContext("src/skip.txt", "s");
        _box.WriteContext("src/node_modules/m.js", "m");
        _box.WriteContext("top.txt", "t");

        await Copy(_box.Request("/app/", "src", "top.txt") with { Excludes = ["*.txt", "node_modules"] });

        Assert.Equal(["app", "app/keep.cs"], _box.TargetTree());
    }

    [Fact]
    public async Task Parents_keeps_the_source_paths()
    {
        _box.WriteContext("a/b/one.txt", "1");
        _box.WriteContext("a/c/two.txt", "2");

        await Copy(_box.Request("/out/", "a/*/*.txt") with { Parents = true });
        await Copy(_box.Request("/pivot/", "a/./b/one.txt") with { Parents = true });

        Assert.Equal("1", File.ReadAllText(_box.InTarget("out/a/b/one.txt")));
        Assert.Equal("2", File.ReadAllText(_box.InTarget("out/a/c/two.txt")));
        Assert.Equal("1", File.ReadAllText(_box.InTarget("pivot/b/one.txt")));
    }

    [Fact]
    public async Task Copy_from_a_root_filesystem_resolves_absolute_symlinks_inside_it()
    {
        var stage = Path.Combine(_box.Root, "stage");
        Directory.CreateDirectory(Path.Combine(stage, "usr/bin"));
        File.WriteAllText(Path.Combine(stage, "usr/bin/tool"), "tool");
        File.CreateSymbolicLink(Path.Combine(stage, "bin"), "/usr/bin");

        await Copy(new CopyRequest
        {
            SourceRoot = stage,
            SourceKind = CopySourceKind.RootFilesystem,
            Sources = ["/bin/tool"],
            Destination = "/usr/local/bin/",
            TargetRoot = _box.Target,
        });

        Assert.Equal("tool", File.ReadAllText(_box.InTarget("usr/local/bin/tool")));
    }

    [Theory]
    [InlineData("0999")]
    [InlineData("u+q")]
    public async Task A_malformed_chmod_is_refused(string chmod)
    {
        _box.WriteContext("a.txt", "a");

        var e = await Assert.ThrowsAsync<CopyOptionException>(() => Copy(_box.Request("/a.txt", "a.txt") with { Chmod = chmod }));

        Assert.StartsWith("FARM1206:", e.Message);
    }

    private static (uint, uint) Owner(string path)
    {
        var (uid, gid, _) = Posix.Stat(path);
        return (uid, gid);
    }
}

/// <summary>A build context and a target root filesystem in a fresh temporary directory.</summary>
public sealed class CopySandbox : IDisposable
{
    public CopySandbox()
    {
        Root = Path.Combine(Path.GetTempPath(), "farm-copy-" + Guid.NewGuid().ToString("N"));
        Context = Path.Combine(Root, "context");
        Target = Path.Combine(Root, "rootfs");
        Directory.CreateDirectory(Context);
        Directory.CreateDirectory(Target);
    }

    public string Root { get; }

    public string Context { get; }

    public string Target { get; }

    public string WriteContext(string relative, string content) => Write(Context, relative, content);

    public string WriteTarget(string relative, string content) => Write(Target, relative, content);

    public string InContext(string relative) => Path.Combine(Context, relative);

    public string InTarget(string relative) => Path.Combine(Target, relative.TrimStart('/'));

    public CopyRequest Request(string destination, params string[] sources) => new()
    {
        SourceRoot = Context,
        Sources = sources,
        Destination = destination,
        TargetRoot = Target,
    };

    /// <summary>Every path in the target root, relative, sorted.</summary>
    public string[] TargetTree() =>
        [.. Directory.EnumerateFileSystemEntries(Target, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(Target, p)).Order(StringComparer.Ordinal)];

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Write(string root, string relative, string content)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }
}

/// <summary>stat and chown for assertions and setup, through the same libc the worker uses.</summary>
public static class Posix
{
    public static (uint Uid, uint Gid, uint Mode) Stat(string path)
    {
        var buffer = new byte[256];
        if (statx(-100, path, 0x100, 0x7FF, buffer) != 0)
        {
            throw new IOException($"statx {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return (BitConverter.ToUInt32(buffer, 20), BitConverter.ToUInt32(buffer, 24), BitConverter.ToUInt16(buffer, 28));
    }

    public static ulong Inode(string path)
    {
        var buffer = new byte[256];
        if (statx(-100, path, 0x100, 0x7FF, buffer) != 0)
        {
            throw new IOException($"statx {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }

        return BitConverter.ToUInt64(buffer, 32);
    }

    public static void Chown(string path, uint uid, uint gid)
    {
        if (lchown(path, uid, gid) != 0)
        {
            throw new IOException($"lchown {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static void Chmod(string path, uint mode)
    {
        if (chmod(path, mode) != 0)
        {
            throw new IOException($"chmod {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static void Link(string existing, string path)
    {
        if (link(existing, path) != 0)
        {
            throw new IOException($"link {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static void Run(string workingDirectory, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr}");
    }

#pragma warning disable SYSLIB1054, CA2101
    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    [DllImport("libc", SetLastError = true)]
    private static extern int lchown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint uid, uint gid);

    [DllImport("libc", SetLastError = true)]
    private static extern int chmod([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);
#pragma warning restore SYSLIB1054, CA2101
}
