using Farm.Dockerfile.Ignore;

namespace Farm.Dockerfile.Tests;

public sealed class DockerIgnoreTests
{
    [Fact]
    public void Parse_normalises_lines_like_docker()
    {
        const string Text = "\uFEFF# comment\r\n  node_modules  \r\n/abs/path\n./a/../b//c/\n  # not a comment\n!  /keep/me\n\n*.log";

        var file = DockerIgnoreFile.Parse(Text);

        Assert.Equal(["node_modules", "abs/path", "b/c", "# not a comment", "!keep/me", "*.log"], file.Patterns);
        Assert.Equal([2, 3, 4, 5, 6, 8], file.Entries.Select(e => e.Line));
    }

    [Fact]
    public void Parse_keeps_a_lone_root_slash_and_lone_bang_for_the_matcher_to_judge()
    {
        var file = DockerIgnoreFile.Parse("/\n!\n");
        Assert.Equal(["/", "!"], file.Patterns);
    }

    [Fact]
    public void Malformed_class_names_the_file_line_and_pattern()
    {
        var file = DockerIgnoreFile.Parse("ok\n\n# c\nsrc/[a-\n", "/ctx/.dockerignore");

        var ex = Assert.Throws<InvalidIgnorePatternException>(file.CreateMatcher);

        Assert.Equal("FARM1110", ex.Code);
        Assert.Equal(4, ex.Line);
        Assert.Equal("src/[a-", ex.Pattern);
        Assert.Contains("/ctx/.dockerignore line 4", ex.Message);
        Assert.Contains("'src/[a-'", ex.Message);
    }

    [Theory]
    [InlineData("!")]
    [InlineData("a\\")]
    [InlineData("[z-a]")]
    [InlineData("[]")]
    [InlineData("[^]")]
    [InlineData("x[a-b-c]")]
    public void Invalid_patterns_are_rejected_when_the_matcher_is_built(string pattern)
    {
        var ex = Assert.Throws<InvalidIgnorePatternException>(() => PatternMatcher.Create([pattern]));
        Assert.Equal("FARM1110", ex.Code);
    }

    [Theory]
    [InlineData("*.md", "README.md", true)]
    [InlineData("*.md", "docs/README.md", false)]
    [InlineData("**/*.md", "docs/deep/README.md", true)]
    [InlineData("docs", "docs/deep/README.md", true)]
    [InlineData("docs/*", "docs/deep/README.md", true)]
    [InlineData("doc?", "docs/x", true)]
    [InlineData("doc?", "doc/x", false)]
    [InlineData("[dD]ocs", "Docs", true)]
    [InlineData("[!d]ocs", "!ocs", true)]
    [InlineData("[!d]ocs", "docs", true)]
    [InlineData("[^d]ocs", "docs", false)]
    [InlineData("[^d]ocs", "xocs", true)]
    [InlineData("a\\[b", "a[b", true)]
    [InlineData("a\\?b", "axb", false)]
    [InlineData("a\\d", "ad", true)]
    [InlineData("a\\d", "a5", false)]
    [InlineData("**/bin", "src/app/bin/x.dll", true)]
    [InlineData("**/bin", "bin", true)]
    [InlineData("**/bin", "src/cabin", false)]
    [InlineData("src/**/obj", "src/obj", true)]
    [InlineData("src/**/obj", "src/a/b/obj/x", true)]
    [InlineData("src/**/obj", "srcobj", false)]
    [InlineData("/tmp", "tmp", false)]
    [InlineData("tmp", "./tmp/", true)]
    [InlineData("tmp", "x/../tmp", true)]
    [InlineData("*", ".", false)]
    [InlineData("*", "anything/below", true)]
    public void Single_pattern_matches_like_docker(string pattern, string path, bool excluded)
    {
        Assert.Equal(excluded, PatternMatcher.Create([pattern]).Matches(path));
    }

    [Fact]
    public void Later_lines_override_earlier_ones()
    {
        var matcher = PatternMatcher.Create(["*.md", "!README.md", "README*"]);
        Assert.True(matcher.Matches("CHANGELOG.md"));
        Assert.True(matcher.Matches("README.md"));

        var reincluded = PatternMatcher.Create(["docs", "!docs/keep.txt"]);
        Assert.True(reincluded.Matches("docs/other.txt"));
        Assert.False(reincluded.Matches("docs/keep.txt"));
        Assert.True(reincluded.Matches("docs"));
        Assert.True(reincluded.HasExceptions);
    }

    [Fact]
    public void An_exception_for_a_directory_reincludes_its_content()
    {
        var matcher = PatternMatcher.Create(["*", "!src", "src/**/*.tmp"]);
        Assert.True(matcher.Matches("README"));
        Assert.False(matcher.Matches("src/main.cs"));
        Assert.True(matcher.Matches("src/cache/x.tmp"));
    }

    [Fact]
    public void Directory_without_exceptions_below_it_can_be_skipped()
    {
        var matcher = PatternMatcher.Create(["node_modules", "build", "!build/keep", "*.log"]);

        Assert.True(matcher.CanSkipDirectory("node_modules"));
        Assert.True(matcher.CanSkipDirectory("node_modules/lodash"));
        Assert.False(matcher.CanSkipDirectory("build"));
        Assert.False(matcher.CanSkipDirectory("src"));
        Assert.True(matcher.CanSkipDirectory("old.log"));
    }

    [Theory]
    [InlineData("!**/keep")]
    [InlineData("!*/keep")]
    [InlineData("!vendor/*/keep")]
    [InlineData("!vendor/[a-z]*")]
    [InlineData("!vend*")]
    [InlineData("!vendor/**")]
    [InlineData("!vendor/a/b")]
    public void Directory_is_walked_when_an_exception_could_match_below_it(string exception)
    {
        var matcher = PatternMatcher.Create(["vendor", exception]);
        Assert.False(matcher.CanSkipDirectory("vendor"));
    }

    [Theory]
    [InlineData("!other/keep")]
    [InlineData("!vendorx/keep")]
    [InlineData("!*.txt")]
    [InlineData("!ven")]
    [InlineData("!v?ndor?")]
    public void Directory_is_skipped_when_no_exception_can_match_below_it(string exception)
    {
        var matcher = PatternMatcher.Create(["vendor", exception]);
        Assert.True(matcher.CanSkipDirectory("vendor"));
    }

    [Fact]
    public void Skipping_agrees_with_matching_every_path_below()
    {
        // Whatever CanSkipDirectory says "skip" for must really be excluded, for every file below.
        string[][] rules =
        [
            ["a", "!a/b/c"], ["a", "!**/c"], ["a/**", "!a/*/c"], ["*", "!*/b"], ["a", "!a"], ["a", "!*", "a/b"],
            ["**", "!x"], ["a*", "!ab/*"], ["[ab]", "![b]/c"],
        ];
        string[] paths = ["a", "a/b", "a/b/c", "a/b/c/d", "a/c", "ab", "ab/c", "b", "b/c", "x", "x/y"];
        foreach (var rule in rules)
        {
            var matcher = PatternMatcher.Create(rule);
            foreach (var dir in paths)
            {
                if (!matcher.CanSkipDirectory(dir))
                {
                    continue;
                }

                foreach (var below in paths.Where(p => p.StartsWith(dir + "/", StringComparison.Ordinal)))
                {
                    Assert.True(matcher.Matches(below), $"rules [{string.Join(", ", rule)}]: skipped {dir} but {below} is included");
                }
            }
        }
    }

    [Fact]
    public void Directory_reincluded_by_an_exception_is_not_skipped()
    {
        var matcher = PatternMatcher.Create(["vendor", "!v?ndor"]);
        Assert.False(matcher.Matches("vendor/x"));
        Assert.False(matcher.CanSkipDirectory("vendor"));
    }

    [Fact]
    public void Empty_matcher_excludes_nothing()
    {
        Assert.False(PatternMatcher.Empty.Matches("anything"));
        Assert.False(PatternMatcher.Create(["", "   "]).Matches("anything"));
        Assert.Empty(PatternMatcher.Create(["", "   "]).Patterns);
    }

    [Fact]
    public void Locate_prefers_the_dockerfile_specific_ignore_file()
    {
        var context = Directory.CreateTempSubdirectory("farm-ignore-");
        try
        {
            Directory.CreateDirectory(Path.Combine(context.FullName, "build"));
            Assert.Null(DockerIgnoreFile.Locate(context.FullName, "build/app.Dockerfile"));

            var atRoot = Path.Combine(context.FullName, ".dockerignore");
            File.WriteAllText(atRoot, "x\n");
            Assert.Equal(atRoot, DockerIgnoreFile.Locate(context.FullName, "build/app.Dockerfile"));
            Assert.Equal(atRoot, DockerIgnoreFile.Locate(context.FullName, null));

            var specific = Path.Combine(context.FullName, "build", "app.Dockerfile.dockerignore");
            File.WriteAllText(specific, "y\n");
            Assert.Equal(specific, DockerIgnoreFile.Locate(context.FullName, "build/app.Dockerfile"));
            Assert.Equal(specific, DockerIgnoreFile.Locate(context.FullName, Path.Combine(context.FullName, "build", "app.Dockerfile")));

            var defaultSpecific = Path.Combine(context.FullName, "Dockerfile.dockerignore");
            File.WriteAllText(defaultSpecific, "z\n");
            Assert.Equal(defaultSpecific, DockerIgnoreFile.Locate(context.FullName, null));
        }
        finally
        {
            context.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task LoadAsync_reads_the_file_and_names_it_in_errors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"farm-{Guid.NewGuid():N}.dockerignore");
        await File.WriteAllTextAsync(path, "good\n[bad\n");
        try
        {
            var file = await DockerIgnoreFile.LoadAsync(path, CancellationToken.None);
            Assert.Equal(path, file.SourcePath);
            var ex = Assert.Throws<InvalidIgnorePatternException>(file.CreateMatcher);
            Assert.Equal(2, ex.Line);
            Assert.Contains(path, ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
