using System.Text;
using System.Text.Json;
using Farm.Contracts;
using Farm.Dockerfile.Parsing;
using Farm.Testing;

namespace Farm.Dockerfile.Tests;

/// <summary>BuildKit's parser corpus, read in place from tests/conformance/buildkit-parser.</summary>
public sealed class ParsingConformanceTests
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static string Corpus => Path.Combine(RepoPaths.Conformance, "buildkit-parser");

    public static TheoryData<string> PositiveCases() => Cases("positive");

    public static TheoryData<string> NegativeCases() => Cases("negative");

    [Theory]
    [MemberData(nameof(PositiveCases))]
    public void Positive_case_dumps_exactly_like_buildkit(string name)
    {
        var dir = Path.Combine(Corpus, "positive", name);
        var text = ReadExact(Path.Combine(dir, "Dockerfile"));
        var expected = ReadExact(Path.Combine(dir, "result"));

        var ast = DockerfileParser.Parse(text);

        Assert.Equal(expected, AstDumper.Dump(ast) + "\n");
    }

    [Theory]
    [MemberData(nameof(NegativeCases))]
    public void Negative_case_is_rejected_with_a_farm_error(string name)
    {
        var text = ReadExact(Path.Combine(Corpus, "negative", name, "Dockerfile"));

        var error = Assert.ThrowsAny<FarmException>(() => DockerfileParser.Parse(text));

        var syntax = Assert.IsType<DockerfileSyntaxException>(error);
        Assert.StartsWith("FARM10", syntax.Code, StringComparison.Ordinal);
        Assert.True(syntax.Line >= 1 && syntax.Column >= 1, $"location {syntax.Line}:{syntax.Column}");
    }

    [Fact]
    public void Line_info_matches_buildkit()
    {
        var dir = Path.Combine(Corpus, "line-info");
        using var expected = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "expected.json")));
        var root = expected.RootElement;

        var ast = DockerfileParser.Parse(ReadExact(Path.Combine(dir, "Dockerfile")));

        Assert.Equal(root.GetProperty("root_start_line").GetInt32(), ast.StartLine);
        Assert.Equal(root.GetProperty("root_end_line").GetInt32(), ast.EndLine);
        var children = root.GetProperty("children").EnumerateArray()
            .Select(c => (c[0].GetInt32(), c[1].GetInt32()))
            .ToList();
        Assert.Equal(children, ast.Instructions.Select(i => (i.Location.StartLine, i.Location.EndLine)).ToList());
    }

    [Fact]
    public void Corpus_is_complete()
    {
        // A corpus silently missing cases would make every theory above pass vacuously.
        Assert.Equal(33, PositiveCases().Count);
        Assert.Equal(4, NegativeCases().Count);
    }

    private static TheoryData<string> Cases(string kind)
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(Corpus, kind)).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    private static string ReadExact(string path) => StrictUtf8.GetString(File.ReadAllBytes(path));
}
