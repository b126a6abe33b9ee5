using Farm.Worker.Copy;

namespace Farm.Worker.Tests;

public sealed class CopySourceHasherTests : IDisposable
{
    private readonly CopySandbox _box = new();

    public void Dispose() => _box.Dispose();

    private Task<IReadOnlyList<CopySourceEntry>> Enumerate(params string[] patterns) =>
        CopySourceHasher.EnumerateAsync(_box.Context, patterns, [], CopySourceKind.BuildContext, CancellationToken.None);

    [Fact]
    public async Task Entries_are_listed_in_path_order_with_content_hashes()
    {
        _box.WriteContext("src/b.txt", "b");
        _box.WriteContext("src/a.txt", "a");
        _box.WriteContext("top.txt", "t");

        var entries = await Enumerate("top.txt", "src");

        Assert.Equal(["src", "src/a.txt", "src/b.txt", "top.txt"], entries.Select(e => e.Path));
        var a = entries.Single(e => e.Path == "src/a.txt");
        Assert.Equal(1, a.Size);
        Assert.Equal("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", a.Sha256);
    }

    [Fact]
    public async Task Mtime_does_not_change_the_digest_but_content_mode_and_owner_do()
    {
        var file = _box.WriteContext("a.txt", "a");
        var before = CopySourceHasher.Digest(await Enumerate("*.txt"));

        File.SetLastWriteTimeUtc(file, new DateTime(1999, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.Equal(before, CopySourceHasher.Digest(await Enumerate("*.txt")));

        Posix.Chmod(file, 0x1ED);
        var afterMode = CopySourceHasher.Digest(await Enumerate("*.txt"));
        Assert.NotEqual(before, afterMode);

        Posix.Chown(file, 5, 5);
        var afterOwner = CopySourceHasher.Digest(await Enumerate("*.txt"));
        Assert.NotEqual(afterMode, afterOwner);

        File.WriteAllText(file, "b");
        Assert.NotEqual(afterOwner, CopySourceHasher.Digest(await Enumerate("*.txt")));
    }

    [Fact]
    public async Task Excluded_files_and_escapes_follow_the_copy_rules()
    {
        _box.WriteContext("src/keep.cs", "k");
        _box.WriteContext("src/skip.log", "s");

        var entries = await CopySourceHasher.EnumerateAsync(_box.Context, ["src"], ["*.log"], CopySourceKind.BuildContext, CancellationToken.None);

        Assert.Equal(["src", "src/keep.cs"], entries.Select(e => e.Path));
        await Assert.ThrowsAsync<SourceOutsideContextException>(() => Enumerate("../x"));
        await Assert.ThrowsAsync<CopySourceNotFoundException>(() => Enumerate("missing*"));
    }
}
