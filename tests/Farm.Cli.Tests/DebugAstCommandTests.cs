using Farm.Testing;

namespace Farm.Cli.Tests;

public class DebugAstCommandTests
{
    private static string Corpus => Path.Combine(RepoPaths.Conformance, "buildkit-parser");

    public static TheoryData<string> Positive() => [.. Directory.GetDirectories(Path.Combine(Corpus, "positive")).Select(d => Path.GetFileName(d)).Order(StringComparer.Ordinal)];

    public static TheoryData<string> Negative() => [.. Directory.GetDirectories(Path.Combine(Corpus, "negative")).Select(d => Path.GetFileName(d)).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Positive))]
    public async Task Farm_debug_ast_prints_buildkits_dump_byte_for_byte(string name)
    {
        var dir = Path.Combine(Corpus, "positive", name);
        var result = await FarmCli.RunAsync("debug", "ast", Path.Combine(dir, "Dockerfile"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(dir, "result")), result.Stdout);
    }

    [Theory]
    [MemberData(nameof(Negative))]
    public async Task Farm_debug_ast_fails_with_a_located_one_line_error(string name)
    {
        var file = Path.Combine(Corpus, "negative", name, "Dockerfile");
        var result = await FarmCli.RunAsync("debug", "ast", file);

        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.Stdout);
        var line = Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Matches(@"^farm: FARM10\d\d: .*Dockerfile:\d+:\d+: ", line);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_file_is_a_clear_error()
    {
        var result = await FarmCli.RunAsync("debug", "ast", "/nonexistent/Dockerfile");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/nonexistent/Dockerfile", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }
}
