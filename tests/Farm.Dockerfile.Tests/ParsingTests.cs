using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Tests;

public sealed class ParsingTests
{
    private static DockerfileSyntaxException ParseFails(string text) =>
        Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse(text));

    [Fact]
    public void Several_heredocs_in_one_RUN_are_read_in_order_and_the_next_instruction_follows()
    {
        var ast = DockerfileParser.Parse("""
            FROM alpine
            RUN <<FILE1 cat > /a && <<FILE2 cat > /b
            one
            FILE1
            two $HOME
            FILE2
            USER app
            """);

        var run = ast.Instructions[1];
        Assert.Equal(["FILE1", "FILE2"], run.Heredocs.Select(h => h.Name));
        Assert.Equal("one\n", run.Heredocs[0].Content);
        Assert.Equal("two $HOME\n", run.Heredocs[1].Content);
        Assert.All(run.Heredocs, h => Assert.True(h.Expand));
        Assert.Equal(new SourceLocation(2, 1, 6), run.Location);
        Assert.Equal(new SourceLocation(5, 1, 6), run.Heredocs[1].Location);
        Assert.Equal("user", ast.Instructions[2].Command);
        Assert.Equal("(from \"alpine\")\n(run \"<<FILE1 cat > /a && <<FILE2 cat > /b\")\n(user \"app\")", AstDumper.Dump(ast));
    }

    [Fact]
    public void Dash_heredoc_strips_leading_tabs_from_body_and_terminator()
    {
        var ast = DockerfileParser.Parse("FROM a\nRUN <<-EOT sh\n\techo hi\n\t\techo there\n\tEOT\nCMD x\n");

        var heredoc = Assert.Single(ast.Instructions[1].Heredocs);
        Assert.True(heredoc.Chomp);
        Assert.Equal("\techo hi\n\t\techo there\n", heredoc.RawContent);
        Assert.Equal("echo hi\necho there\n", heredoc.Content);
        Assert.Equal(3, ast.Instructions.Count);
    }

    [Theory]
    [InlineData("<<\"EOF\"")]
    [InlineData("<<'EOF'")]
    [InlineData("<<E\"O\"F")]
    public void Quoted_heredoc_delimiter_disables_expansion(string marker)
    {
        var ast = DockerfileParser.Parse($"FROM a\nRUN {marker}\necho $HOME\nEOF\n");

        var heredoc = Assert.Single(ast.Instructions[1].Heredocs);
        Assert.Equal("EOF", heredoc.Name);
        Assert.False(heredoc.Expand);
        Assert.Equal("echo $HOME\n", heredoc.Content);
    }

    [Fact]
    public void COPY_heredoc_and_ONBUILD_RUN_heredoc_are_consumed()
    {
        var ast = DockerfileParser.Parse("FROM a\nCOPY <<EOF /etc/motd\nhello\nEOF\nONBUILD RUN <<X\nmake\nX\nWORKDIR /w\n");

        Assert.Equal("hello\n", Assert.Single(ast.Instructions[1].Heredocs).Content);
        Assert.Equal("make\n", Assert.Single(ast.Instructions[2].Heredocs).Content);
        Assert.Equal("onbuild (run \"<<X\")", AstDumper.Dump(ast.Instructions[2]));
        Assert.Equal(4, ast.Instructions.Count);
    }

    [Fact]
    public void Heredoc_markers_in_quotes_or_exec_form_or_other_instructions_are_not_heredocs()
    {
        var ast = DockerfileParser.Parse("FROM a\nRUN echo \"<<EOF\"\nRUN [\"cat\", \"<<EOF\"]\nLABEL a=<<EOF\nCMD x\n");

        Assert.All(ast.Instructions, i => Assert.Empty(i.Heredocs));
        Assert.Equal(5, ast.Instructions.Count);
    }

    [Fact]
    public void Unterminated_heredoc_reports_the_marker_position()
    {
        var error = ParseFails("FROM a\n\nRUN  cat <<EOF\nhello\n");

        Assert.Equal(DockerfileErrorCodes.UnterminatedHeredoc, error.Code);
        Assert.Equal((3, 10), (error.Line, error.Column));
        Assert.StartsWith("FARM1007: Dockerfile:3:10: unterminated heredoc <<EOF", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backtick_escape_keeps_Windows_paths_and_continues_lines()
    {
        var ast = DockerfileParser.Parse("# escape=`\n\nFROM mcr.microsoft.com/windows/servercore\nCOPY C:\\src\\app C:\\app\\\nRUN dir `\n    C:\\app\n");

        Assert.Equal('`', ast.EscapeToken);
        Assert.Equal("`", ast.Directive("escape"));
        Assert.Equal(["C:\\src\\app", "C:\\app\\"], ast.Instructions[1].Arguments);
        Assert.Equal(["dir     C:\\app"], ast.Instructions[2].Arguments);
        Assert.Equal(new SourceLocation(5, 1, 6), ast.Instructions[2].Location);
    }

    [Fact]
    public void Directives_are_recognised_only_at_the_top()
    {
        var ast = DockerfileParser.Parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n# escape=`\nRUN a \\\n b\n");

        Assert.Equal(["syntax", "check"], ast.Directives.Select(d => d.Name));
        Assert.Equal("skip=all", ast.Directive("check"));
        Assert.Equal('\\', ast.EscapeToken);
        Assert.Contains(ast.Nodes, n => n is CommentNode { Text: "escape=`" });
        Assert.Equal(["a  b"], ast.Instructions[1].Arguments);
    }

    [Fact]
    public void Duplicated_directive_is_an_error_at_its_line()
    {
        var error = ParseFails("# escape=`\n# Escape=\\\nFROM a\n");

        Assert.Equal(DockerfileErrorCodes.DuplicateDirective, error.Code);
        Assert.Equal((2, 1), (error.Line, error.Column));
    }

    [Fact]
    public void Invalid_escape_value_is_an_error()
    {
        var error = ParseFails("# escape=x\nFROM a\n");

        Assert.Equal(DockerfileErrorCodes.InvalidDirective, error.Code);
        Assert.Contains("` (backtick)", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n   \n")]
    [InlineData("# only\n# comments\n")]
    [InlineData("# syntax=docker/dockerfile:1\n")]
    public void File_without_instructions_is_rejected(string text)
    {
        Assert.Equal(DockerfileErrorCodes.NoInstructions, ParseFails(text).Code);
    }

    [Fact]
    public void Errors_carry_file_line_and_column()
    {
        var error = Assert.Throws<DockerfileSyntaxException>(() =>
            DockerfileParser.Parse("FROM a\n\n    ENV PATH\n", "build/Dockerfile.dev"));

        Assert.Equal(("build/Dockerfile.dev", 3, 5), (error.FileName, error.Line, error.Column));
        Assert.StartsWith("FARM1005: build/Dockerfile.dev:3:5: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_string_JSON_element_is_an_error_but_invalid_JSON_is_shell_text()
    {
        Assert.Equal(DockerfileErrorCodes.JsonNotStringArray, ParseFails("FROM a\nCMD [\"a\", 1]\n").Code);

        var ast = DockerfileParser.Parse("FROM a\nCMD [\"a\", \n");
        Assert.False(ast.Instructions[1].IsJson);
        Assert.Equal(["[\"a\","], ast.Instructions[1].Arguments);
    }

    [Fact]
    public void Trivia_locations_and_source_text_are_kept()
    {
        const string text = "# hello\n\nFROM a AS b\n  RUN x \\\n  # inner\n  y\n";
        var ast = DockerfileParser.Parse(text);

        Assert.Collection(
            ast.Nodes,
            n => Assert.Equal(new CommentNode("hello", new SourceLocation(1, 1, 1)), n),
            n => Assert.IsType<BlankLineNode>(n),
            n => Assert.Equal(new SourceLocation(3, 1, 3), n.Location),
            n => Assert.Equal(new SourceLocation(4, 3, 6), n.Location),
            n => Assert.Equal(new CommentNode("inner", new SourceLocation(5, 3, 5)), n));
        var run = ast.Instructions[1];
        Assert.Equal("  RUN x \\\n  # inner\n  y", run.SourceText);
        Assert.Equal("RUN x   y", run.Original);
        Assert.Equal(["hello"], ast.Instructions[0].PrecedingComments);
    }

    [Fact]
    public void CRLF_line_ends_and_a_byte_order_mark_are_accepted()
    {
        var ast = DockerfileParser.Parse("\uFEFFFROM a\r\nRUN a \\\r\n b\r\n");

        Assert.Equal("(from \"a\")\n(run \"a  b\")", AstDumper.Dump(ast));
    }

    [Theory]
    [InlineData("tab\there", "\"tab\\there\"")]
    [InlineData("nbsp\u00a0x", "\"nbsp\\u00a0x\"")]
    [InlineData("del\u007f", "\"del\\x7f\"")]
    [InlineData("\u2665 ok", "\"\u2665 ok\"")]
    [InlineData("\U0001F600", "\"\U0001F600\"")]
    [InlineData("\u200b", "\"\\u200b\"")]
    public void Quoting_follows_Go_strconv_Quote(string value, string expected)
    {
        Assert.Equal(expected, GoQuote.Quote(value));
    }
}
