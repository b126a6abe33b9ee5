using Farm.Dockerfile.Context;

namespace Farm.Dockerfile.Tests;

/// <summary>COPY source selection over a context index (what the coordinator keys); the worker runs the same code on disk.</summary>
public sealed class CopySourceResolverTests
{
    private static CopySourceResolver Resolver(SourceRootKind kind, params ContextEntry[] entries) =>
        new(new ContextIndexTree(new ContextIndex(entries)), kind);

    private static ContextEntry Dir(string path) => new(path, ContextEntryType.Directory, 0x1ED, 0, null, null);

    private static ContextEntry File(string path, long size = 1) => new(path, ContextEntryType.File, 0x1A4, size, "00", null);

    private static ContextEntry Link(string path, string target) => new(path, ContextEntryType.Symlink, 0x1FF, 0, "00", target);

    private static string[] Paths(IReadOnlyList<ContextEntry> entries) => [.. entries.Select(e => e.Path)];

    [Fact]
    public void The_context_root_is_a_0755_directory_and_selects_everything()
    {
        var resolver = Resolver(SourceRootKind.BuildContext, Dir("d"), File("d/f"), File("top"));

        var selected = resolver.Select(["."], []);

        Assert.Equal(["", "d", "d/f", "top"], Paths(selected));
        Assert.Equal((ContextEntryType.Directory, ContextIndexTree.RootMode), (selected[0].Type, selected[0].Mode));
    }

    [Fact]
    public void In_a_root_filesystem_an_absolute_symlink_means_its_own_root_and_in_a_context_it_is_refused()
    {
        ContextEntry[] tree = [Dir("usr"), Dir("usr/bin"), File("usr/bin/tool", 7), Link("bin", "/usr/bin")];

        var stage = Resolver(SourceRootKind.RootFilesystem, tree).Select(["/bin/tool"], []);
        var e = Assert.Throws<BuildContextException>(() => Resolver(SourceRootKind.BuildContext, tree).Select(["/bin/tool"], []));

        Assert.Equal(("bin/tool", 7L), (stage.Single().Path, stage.Single().Size));
        Assert.Equal("FARM1203", e.Code);
    }

    [Fact]
    public void A_wildcard_skips_a_dangling_symlink_but_a_source_with_nothing_left_is_FARM1204()
    {
        var resolver = Resolver(SourceRootKind.BuildContext, File("a1"), Link("a2", "missing"), Link("b", "missing"));

        Assert.Equal(["a1"], Paths(resolver.Select(["a*"], [])));
        Assert.Equal("FARM1204", Assert.Throws<BuildContextException>(() => resolver.Select(["b*"], [])).Code);
    }

    [Fact]
    public void A_double_star_in_a_source_is_one_component_as_in_Go_filepath_Match()
    {
        var resolver = Resolver(SourceRootKind.BuildContext, Dir("a"), File("a/f"), Dir("a/b"), File("a/b/f"));

        Assert.Equal(["a/f"], Paths(resolver.Select(["**/f"], [])));
    }

    [Fact]
    public void Symlinks_below_a_selected_directory_are_kept_as_symlinks_not_followed()
    {
        var resolver = Resolver(SourceRootKind.BuildContext, Dir("d"), Link("d/up", ".."), Link("d/out", "/etc"), File("x"));

        var selected = resolver.Select(["d"], []);

        Assert.Equal(["d", "d/out", "d/up"], Paths(selected));
        Assert.Equal(["/etc", ".."], selected.Skip(1).Select(e => e.LinkTarget));
    }

    [Fact]
    public void An_excluded_directory_takes_its_whole_subtree_with_it()
    {
        var resolver = Resolver(SourceRootKind.BuildContext, Dir("app"), Dir("app/cache"), File("app/cache/keep"), File("app/main"));

        var selected = resolver.Select(["app"], ["cache", "!cache/keep"]);

        // BuildKit would descend for the re-include; both Farm sides stop here, so the key still matches the copy.
        Assert.Equal(["app", "app/main"], Paths(selected));
    }
}
