using System.Formats.Tar;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Ignore;

namespace Farm.Dockerfile.Tests;

public sealed class BuildContextPackerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-ctx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Write(string path, string content)
    {
        var full = Path.Combine(_dir, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
    }

    private async Task<(ContextIndex Index, byte[] Tar)> PackAsync(string dir, params string[] ignore)
    {
        var tar = new MemoryStream();
        var index = await BuildContextPacker.PackAsync(dir, PatternMatcher.Create(ignore), tar, null, CancellationToken.None);
        return (index, tar.ToArray());
    }

    private static List<string> Names(byte[] tar)
    {
        var names = new List<string>();
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }

    [Fact]
    public async Task Ignored_files_are_left_out_and_an_exception_re_includes_a_file_with_its_parents()
    {
        Write("Dockerfile", "FROM scratch");
        Write("src/app.c", "int main;");
        Write("node_modules/a/index.js", "x");
        Write("logs/keep.log", "k");
        Write("logs/drop.log", "d");

        var (index, tar) = await PackAsync(_dir, "node_modules", "logs", "!logs/keep.log");

        Assert.Equal(["Dockerfile", "logs/", "logs/keep.log", "src/", "src/app.c"], Names(tar));
        Assert.Equal(["Dockerfile", "logs", "logs/keep.log", "src", "src/app.c"], index.Entries.Select(e => e.Path));
        var app = index.Entries.Single(e => e.Path == "src/app.c");
        Assert.Equal(9, app.Size);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("int main;"u8)), app.Sha256);
    }

    [Fact]
    public async Task The_same_tree_packs_to_the_same_index_whatever_the_times_and_to_the_same_tar_when_times_match()
    {
        Write("a/b.txt", "b");
        Write("c.txt", "c");
        var first = await PackAsync(_dir);
        var again = await PackAsync(_dir);
        Assert.Equal(first.Tar, again.Tar);

        File.SetLastWriteTimeUtc(Path.Combine(_dir, "c.txt"), new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var touched = await PackAsync(_dir);
        Assert.Equal(first.Index.ToBytes(), touched.Index.ToBytes());
        Assert.NotEqual(first.Tar, touched.Tar);
    }

    [Fact]
    public async Task Owners_are_zeroed_symlinks_are_kept_and_special_files_skipped()
    {
        Write("f", "data");
        File.CreateSymbolicLink(Path.Combine(_dir, "link"), "f");
        var fifo = Path.Combine(_dir, "pipe");
        using (var p = System.Diagnostics.Process.Start("mkfifo", fifo))
        {
            p.WaitForExit();
        }

        var (index, tar) = await PackAsync(_dir);
        Assert.Equal(["f", "link"], Names(tar));
        Assert.Equal("f", index.Entries.Single(e => e.Path == "link").LinkTarget);
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is { } entry)
        {
            Assert.Equal(0, entry.Uid);
            Assert.Equal(0, entry.Gid);
        }
    }

    [Fact]
    public void A_same_size_rewrite_in_the_same_second_changes_the_fingerprint_and_an_untouched_tree_keeps_it()
    {
        Write("a.txt", "one");
        Write("sub/b.txt", "two");
        var fingerprint = BuildContextPacker.Plan(_dir, PatternMatcher.Empty, CancellationToken.None).Fingerprint();
        Assert.Equal(fingerprint, BuildContextPacker.Plan(_dir, PatternMatcher.Empty, CancellationToken.None).Fingerprint());

        var path = Path.Combine(_dir, "a.txt");
        var mtime = File.GetLastWriteTimeUtc(path);
        File.WriteAllText(path, "uno");
        File.SetLastWriteTimeUtc(path, mtime);

        Assert.NotEqual(fingerprint, BuildContextPacker.Plan(_dir, PatternMatcher.Empty, CancellationToken.None).Fingerprint());
    }

    [Fact]
    public void A_plan_lists_what_the_tar_holds_in_the_same_order_and_knows_when_something_changed_just_now()
    {
        Write("z.txt", "z");
        Write("a/b.txt", "b");
        Write("skip.tmp", "t");
        var plan = BuildContextPacker.Plan(_dir, PatternMatcher.Create(["*.tmp"]), CancellationToken.None);

        Assert.Equal(["a", "a/b.txt", "z.txt"], plan.Entries.Select(e => e.Path));
        Assert.True(plan.ChangedSince(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1)));
        Assert.False(plan.ChangedSince(DateTimeOffset.UtcNow.AddMinutes(5), TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public async Task The_index_round_trips_through_its_serialized_form()
    {
        Write("x/y", "z");
        var (index, _) = await PackAsync(_dir);
        Assert.Equal(index.Entries, ContextIndex.Parse(index.ToBytes()).Entries);
    }

    [Fact]
    public async Task A_missing_context_is_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<BuildContextException>(() => PackAsync(Path.Combine(_dir, "nope")));
        Assert.StartsWith("FARM1201: ", e.Message, StringComparison.Ordinal);
    }
}
