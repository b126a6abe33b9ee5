using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Tests;

public sealed class ParsingRobustnessTests
{
    [Theory]
    [InlineData("FROM a\nRUN <<\n")]
    [InlineData("FROM a\nRUN <<\"EOF\n")]
    [InlineData("FROM a\nCOPY <<'' /x\n")]
    [InlineData("FROM a\nRUN cat <<EOF <<EOF\nx\nEOF\n")]
    [InlineData("FROM a\nONBUILD\n")]
    [InlineData("FROM a\nHEALTHCHECK\n")]
    [InlineData("FROM a\nCOPY -- --\n")]
    [InlineData("FROM a\nCOPY --\n")]
    [InlineData("FROM a\nENV a=\"unterminated\n")]
    [InlineData("FROM a\nCMD [\"\\ud800\"]\n")]
    [InlineData("FROM a\nRUN x \\")]
    [InlineData("\\\nFROM a")]
    [InlineData("FROM a\nCOPY --from=\"a b\" x y\n")]
    [InlineData("FROM a\nRUN [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"x\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n")]
    public void Odd_input_parses_or_fails_with_a_syntax_error(string text)
    {
        try
        {
            var ast = DockerfileParser.Parse(text);
            _ = AstDumper.Dump(ast);
            _ = DockerfileInstructions.Convert(ast);
        }
        catch (DockerfileSyntaxException e)
        {
            Assert.StartsWith("FARM10", e.Code, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Deeply_nested_JSON_array_is_still_recognised_as_JSON()
    {
        var text = "FROM a\nRUN " + new string('[', 100) + "\"x\"" + new string(']', 100) + "\n";

        Assert.Equal(DockerfileErrorCodes.JsonNotStringArray, Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse(text)).Code);
    }
}
