using Farm.Dockerfile.Context;
using Farm.Dockerfile.Ignore;

namespace Farm.Coordinator.Tests;

/// <summary>Source selection on an index packed from a real directory, as the CLI packs it.</summary>
public sealed class CacheKeyContextTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("farm-keyctx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<CopySourceResolver> PackAsync()
    {
        var index = await BuildContextPacker.PackAsync(_dir, PatternMatcher.Empty, Stream.Null, null, default);
        return new CopySourceResolver(new ContextIndexTree(index));
    }

    [Fact]
    public async Task A_named_symlink_is_followed_inside_the_context_and_its_directory_contents_are_selected()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "real/sub"));
        File.WriteAllText(Path.Combine(_dir, "real/sub/f.txt"), "f");
        File.CreateSymbolicLink(Path.Combine(_dir, "link"), "real");
        var selected = (await PackAsync()).Select(["link/sub"], []);
        Assert.Equal(["link/sub", "link/sub/f.txt"], selected.Select(e => e.Path));
        Assert.Equal(ContextEntryType.Directory, selected[0].Type);
    }

    [Fact]
    public async Task A_symlink_leaving_the_context_is_refused()
    {
        File.CreateSymbolicLink(Path.Combine(_dir, "out"), "/etc");
        var e = Assert.Throws<BuildContextException>(() => PackAsync().GetAwaiter().GetResult().Select(["out/passwd"], []));
        Assert.Equal("FARM1203", e.Code);
    }

    [Fact]
    public async Task Excludes_apply_relative_to_the_copied_directory_and_to_the_root()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "app/node_modules/x"));
        File.WriteAllText(Path.Combine(_dir, "app/node_modules/x/i.js"), "1");
        File.WriteAllText(Path.Combine(_dir, "app/main.js"), "1");
        File.WriteAllText(Path.Combine(_dir, "app/main.test.js"), "1");
        var selected = (await PackAsync()).Select(["app"], ["node_modules", "app/*.test.js"]);
        Assert.Equal(["app", "app/main.js"], selected.Select(e => e.Path));
    }
}
