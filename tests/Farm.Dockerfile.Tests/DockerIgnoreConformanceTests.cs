using System.Text.Json;
using Farm.Dockerfile.Ignore;
using Farm.Testing;

namespace Farm.Dockerfile.Tests;

/// <summary>The shared moby/patternmatcher and BuildKit corpus, used in place (see buildkit-parser/SOURCE.md).</summary>
public sealed class DockerIgnoreConformanceTests
{
    private static string CorpusDir => Path.Combine(RepoPaths.Conformance, "buildkit-parser", "dockerignore");

    public static TheoryData<int, string> PatternMatcherRows()
    {
        var data = new TheoryData<int, string>();
        var lines = File.ReadAllLines(Path.Combine(CorpusDir, "patternmatcher-cases.jsonl"));
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length > 0)
            {
                // The row number keeps theory names unique and points at the line to read.
                data.Add(i + 1, lines[i]);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(PatternMatcherRows))]
    public void Patternmatcher_row_gives_the_upstream_result(int row, string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var patterns = root.GetProperty("patterns").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var path = root.GetProperty("path").GetString()!;
        var expected = root.GetProperty("match").GetBoolean();
        var expectsError = root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String;

        if (expectsError)
        {
            var ex = Assert.Throws<InvalidIgnorePatternException>(() => PatternMatcher.Create(patterns).Matches(path));
            Assert.Equal("FARM1110", ex.Code);
            return;
        }

        var matcher = PatternMatcher.Create(patterns);
        Assert.True(expected == matcher.Matches(path), $"row {row}: patterns {string.Join(", ", patterns)} path '{path}' expected {expected}");
    }

    [Fact]
    public void ReadAll_corpus_gives_the_upstream_pattern_list()
    {
        var dir = Path.Combine(CorpusDir, "ignorefile-readall");
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var input = expected.RootElement.GetProperty("input").GetString()!;
        var want = expected.RootElement.GetProperty("expected_patterns").EnumerateArray().Select(p => p.GetString()!).ToArray();

        var parsed = DockerIgnoreFile.Parse(File.ReadAllText(Path.Combine(dir, input)));

        Assert.Equal(want, parsed.Patterns);
    }

    [Fact]
    public void ReadAll_of_nothing_is_an_empty_list()
    {
        Assert.Empty(DockerIgnoreFile.Parse(string.Empty).Entries);
    }

    [Fact]
    public void Buildkit_integration_case_keeps_and_excludes_the_expected_files()
    {
        var dir = Path.Combine(CorpusDir, "buildkit-integration-basic");
        using var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var root = expected.RootElement;
        var matcher = DockerIgnoreFile.Parse(File.ReadAllText(Path.Combine(dir, ".dockerignore"))).CreateMatcher();

        var present = root.GetProperty("expected_present_after_COPY . .").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var excluded = root.GetProperty("expected_excluded").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var context = root.GetProperty("context_files").EnumerateArray().Select(p => p.GetString()!).ToArray();

        Assert.Equal(context.Order(StringComparer.Ordinal), present.Concat(excluded).Order(StringComparer.Ordinal));
        Assert.All(present, file => Assert.False(matcher.Matches(file), $"{file} should be kept"));
        Assert.All(excluded, file => Assert.True(matcher.Matches(file), $"{file} should be excluded"));
    }
}
