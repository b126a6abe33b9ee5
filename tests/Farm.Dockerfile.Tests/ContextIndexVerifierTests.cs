using Farm.Dockerfile.Context;
using Farm.Dockerfile.Ignore;

namespace Farm.Dockerfile.Tests;

/// <summary>A context index is checked against its tar: the packer's own pair passes, any other is refused (FARM1212).</summary>
public sealed class ContextIndexVerifierTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-verify-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<(ContextIndex Index, byte[] Tar)> PackAsync(IReadOnlyDictionary<string, string> files, string? link = null)
    {
        var root = Directory.CreateDirectory(Path.Combine(_dir, Guid.NewGuid().ToString("N")[..8])).FullName;
        foreach (var (path, text) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, path))!);
            await File.WriteAllTextAsync(Path.Combine(root, path), text);
        }

        File.SetUnixFileMode(Path.Combine(root, files.Keys.First()), (UnixFileMode)0b111_101_101);
        if (link is not null)
        {
            File.CreateSymbolicLink(Path.Combine(root, "link"), link);
        }

        using var tar = new MemoryStream();
        var index = await BuildContextPacker.PackAsync(root, PatternMatcher.Empty, tar, null, CancellationToken.None);
        return (index, tar.ToArray());
    }

    [Fact]
    public async Task The_index_the_packer_wrote_is_the_index_of_its_tar()
    {
        var (index, tar) = await PackAsync(new Dictionary<string, string> { ["app/run.sh"] = "#!/bin/sh\n", ["app/data/a.txt"] = "a", ["README"] = "r" }, link: "app/run.sh");

        var derived = await ContextIndexVerifier.DeriveAsync(new MemoryStream(tar), CancellationToken.None);

        Assert.Equal(index.ToBytes(), derived.ToBytes());
        await ContextIndexVerifier.VerifyAsync(index, new MemoryStream(tar), CancellationToken.None);
    }

    [Fact]
    public async Task An_index_of_other_content_another_mode_or_other_entries_is_refused_naming_the_entry()
    {
        var (good, _) = await PackAsync(new Dictionary<string, string> { ["hello.txt"] = "good\n" });
        var (_, evil) = await PackAsync(new Dictionary<string, string> { ["hello.txt"] = "evil\n" });
        var (more, moreTar) = await PackAsync(new Dictionary<string, string> { ["hello.txt"] = "good\n", ["extra.txt"] = "x" });

        var content = await Assert.ThrowsAsync<ContextIndexMismatchException>(() => ContextIndexVerifier.VerifyAsync(good, new MemoryStream(evil), CancellationToken.None));
        Assert.StartsWith("FARM1212: The context index does not match the context tar: 'hello.txt' is a file of 5 bytes", content.Message, StringComparison.Ordinal);

        var chmod = new ContextIndex([.. good.Entries.Select(e => e with { Mode = 0b110_100_100 })]);
        var (_, goodTar) = await PackAsync(new Dictionary<string, string> { ["hello.txt"] = "good\n" });
        var mode = await Assert.ThrowsAsync<ContextIndexMismatchException>(() => ContextIndexVerifier.VerifyAsync(chmod, new MemoryStream(goodTar), CancellationToken.None));
        Assert.Matches("'hello.txt' is a file of 5 bytes, mode 755, sha256 [0-9a-f]{12} in the tar but a file of 5 bytes, mode 644,", mode.Message);

        var extra = await Assert.ThrowsAsync<ContextIndexMismatchException>(() => ContextIndexVerifier.VerifyAsync(good, new MemoryStream(moreTar), CancellationToken.None));
        Assert.Contains("extra.txt", extra.Message, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<ContextIndexMismatchException>(() => ContextIndexVerifier.VerifyAsync(more, new MemoryStream(goodTar), CancellationToken.None));
        Assert.Contains("extra.txt", missing.Message, StringComparison.Ordinal);
    }
}
