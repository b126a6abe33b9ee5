using Farm.Dockerfile.Expansion;

namespace Farm.Dockerfile.Tests;

public sealed class ExpansionTests
{
    private static readonly Dictionary<string, string> Env = new()
    {
        ["PWD"] = "/home",
        ["SHELL"] = "bash",
        ["KOREAN"] = "한국어",
        ["NULL"] = string.Empty,
        ["SPACED"] = "a b  c",
        ["FILE"] = "dir/archive.tar.gz",
        ["URL"] = "http://example.com/http://x",
    };

    private static readonly ShellWordExpander Backslash = new();
    private static readonly ShellWordExpander Backtick = new('`');

    [Theory]
    [InlineData("hello", "hello")]
    [InlineData("$PWD", "/home")]
    [InlineData("${PWD}", "/home")]
    [InlineData("he$PWD", "he/home")]
    [InlineData("${PWD}x", "/homex")]
    [InlineData("$PWDx", "")]
    [InlineData("$pwd", "")]
    [InlineData("$KOREAN", "한국어")]
    [InlineData("$", "$")]
    [InlineData("a$", "a$")]
    [InlineData("he$.x", "he$.x")]
    [InlineData("$ x", "$ x")]
    [InlineData("$/x", "$/x")]
    [InlineData("$1x", "x")]
    [InlineData("$12x", "x")]
    [InlineData("$@x", "x")]
    [InlineData("$*x", "x")]
    [InlineData("$$", "")]
    [InlineData("${1}", "")]
    [InlineData("${UNSET}", "")]
    public void Plain_references_expand_like_buildkit(string word, string expected)
    {
        Assert.Equal(expected, Backslash.ProcessWord(word, Env));
    }

    [Theory]
    [InlineData("${PWD:-x}", "/home")]
    [InlineData("${NULL:-x}", "x")]
    [InlineData("${UNSET:-x}", "x")]
    [InlineData("${PWD-x}", "/home")]
    [InlineData("${NULL-x}", "")]
    [InlineData("${UNSET-x}", "x")]
    [InlineData("${PWD:+x}", "x")]
    [InlineData("${NULL:+x}", "")]
    [InlineData("${UNSET:+x}", "")]
    [InlineData("${PWD+x}", "x")]
    [InlineData("${NULL+x}", "x")]
    [InlineData("${UNSET+x}", "")]
    [InlineData("${PWD?x}", "/home")]
    [InlineData("${NULL?x}", "")]
    [InlineData("${PWD:?x}", "/home")]
    [InlineData("${UNSET:-}", "")]
    [InlineData("${UNSET:-a b}", "a b")]
    [InlineData("${UNSET:-${ALSO:-x}}", "x")]
    [InlineData("${UNSET:-${SHELL:-x}}", "bash")]
    [InlineData("${UNSET:-$SHELL-y}", "bash-y")]
    [InlineData("${UNSET:-'a}b'}", "a}b")]
    [InlineData("${UNSET:-\"$SHELL}\"}", "bash}")]
    [InlineData("${UNSET:-a\\}b}", "a}b")]
    [InlineData("${SHELL:+-${PWD}}", "-/home")]
    public void Default_and_alternative_values_follow_set_and_empty(string word, string expected)
    {
        Assert.Equal(expected, Backslash.ProcessWord(word, Env));
    }

    [Theory]
    [InlineData("${FILE#*/}", "archive.tar.gz")]
    [InlineData("${FILE##*.}", "gz")]
    [InlineData("${FILE#*.}", "tar.gz")]
    [InlineData("${FILE%.*}", "dir/archive.tar")]
    [InlineData("${FILE%%.*}", "dir/archive")]
    [InlineData("${FILE%/*}", "dir")]
    [InlineData("${FILE#nomatch}", "dir/archive.tar.gz")]
    [InlineData("${FILE#}", "dir/archive.tar.gz")]
    [InlineData("${FILE#di?}", "/archive.tar.gz")]
    [InlineData("${FILE%.t?r.gz}", "dir/archive")]
    [InlineData("${UNSET#x}", "")]
    [InlineData("${KOREAN#?}", "국어")]
    [InlineData("${KOREAN%?}", "한국")]
    public void Trim_modifiers_remove_shortest_or_longest_match(string word, string expected)
    {
        Assert.Equal(expected, Backslash.ProcessWord(word, Env));
    }

    [Fact]
    public void Trim_patterns_take_escaped_wildcards_literally()
    {
        var env = new Dictionary<string, string> { ["FOO"] = "a***yy*", ["BAR"] = "xx**", ["Q"] = "???y" };
        Assert.Equal("a", Backslash.ProcessWord("${FOO%%\\**\\*}", env));
        Assert.Equal("xx", Backslash.ProcessWord("${BAR%%\\**}", env));
        Assert.Equal("?y", Backslash.ProcessWord("${Q#?\\?}", env));
    }

    [Fact]
    public void Trim_pattern_treats_regex_metacharacters_as_literals()
    {
        var env = new Dictionary<string, string> { ["FOO"] = "()[]{}^$.*?|\\x" };
        Assert.Equal("x", Backslash.ProcessWord("${FOO#()[]{\\}^$.\\*\\?|\\\\}", env));
    }

    [Theory]
    [InlineData("${URL/http/https}", "https://example.com/http://x")]
    [InlineData("${URL//http/https}", "https://example.com/https://x")]
    [InlineData("${FILE/\\//-}", "dir-archive.tar.gz")]
    [InlineData("${FILE//?/x}", "xxxxxxxxxxxxxxxxxx")]
    [InlineData("${FILE/a*./}", "dir/gz")]
    [InlineData("${FILE//*/X}", "X")]
    [InlineData("${FILE///}", "dir/archive.tar.gz")]
    [InlineData("${FILE/$NULL/ww}", "wwdir/archive.tar.gz")]
    [InlineData("${UNSET/a/b}", "")]
    [InlineData("${SHELL/$SHELL/${PWD}}", "/home")]
    public void Replacement_replaces_first_or_all_matches(string word, string expected)
    {
        Assert.Equal(expected, Backslash.ProcessWord(word, Env));
    }

    [Fact]
    public void Replacement_keeps_escaped_separators_as_buildkit_does()
    {
        var env = new Dictionary<string, string> { ["FOO"] = "/tmp/foo.txt" };
        Assert.Equal("\\/tmp\\/foo.txt", Backslash.ProcessWord("${FOO//\\//\\/}", env));
    }

    [Fact]
    public void Replacement_pattern_comes_from_variables_with_wildcards()
    {
        var env = new Dictionary<string, string> { ["FOO"] = "/foo*/*/*.txt", ["NEEDLE"] = "\\*/" };
        Assert.Equal("/foo.*/*.txt - /foo..*.txt", Backslash.ProcessWord("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", env));
    }

    [Theory]
    [InlineData("'$PWD'", "$PWD")]
    [InlineData("\"$PWD\"", "/home")]
    [InlineData("\"'$PWD'\"", "'/home'")]
    [InlineData("'\"$PWD\"'", "\"$PWD\"")]
    [InlineData("a'b c'd", "ab cd")]
    [InlineData("\\$PWD", "$PWD")]
    [InlineData("\\\\$PWD", "\\/home")]
    [InlineData("\"\\$PWD\"", "$PWD")]
    [InlineData("\"\\\\$PWD\"", "\\/home")]
    [InlineData("\"\\\"\"", "\"")]
    [InlineData("\"\\n\"", "\\n")]
    [InlineData("\\n", "n")]
    [InlineData("\\'x", "'x")]
    [InlineData("'\\'", "\\")]
    [InlineData("\\${}", "${}")]
    [InlineData("abc\\", "abc")]
    [InlineData("\"\"", "")]
    public void Quotes_and_backslash_escapes_follow_the_shell_rules(string word, string expected)
    {
        Assert.Equal(expected, Backslash.ProcessWord(word, Env));
    }

    [Theory]
    [InlineData("`$PWD", "$PWD")]
    [InlineData("``$PWD", "`/home")]
    [InlineData("\\$PWD", "\\/home")]
    [InlineData("C:\\dir\\$SHELL", "C:\\dir\\bash")]
    [InlineData("\"`\"\"", "\"")]
    [InlineData("\"`$PWD\"", "$PWD")]
    [InlineData("\"\\$PWD\"", "\\/home")]
    public void Backtick_escape_character_replaces_backslash(string word, string expected)
    {
        Assert.Equal(expected, Backtick.ProcessWord(word, Env));
    }

    [Theory]
    [InlineData("a b c", new[] { "a", "b", "c" })]
    [InlineData("  a   b  ", new[] { "a", "b" })]
    [InlineData("$SPACED", new[] { "a", "b", "c" })]
    [InlineData("\"$SPACED\"", new[] { "a b  c" })]
    [InlineData("x\"$SPACED\"y", new[] { "xa b  cy" })]
    [InlineData("'a b' c", new[] { "a b", "c" })]
    [InlineData("a\\ b c", new[] { "a b", "c" })]
    [InlineData("80/tcp ${PORT:-443}/udp", new[] { "80/tcp", "443/udp" })]
    [InlineData("${UNSET:-x y}", new[] { "x", "y" })]
    [InlineData("\"\"", new string[0])]
    [InlineData("", new string[0])]
    public void Words_split_on_unquoted_whitespace_after_expansion(string word, string[] expected)
    {
        Assert.Equal(expected, Backslash.ProcessWords(word, Env));
    }

    [Fact]
    public void Value_keeps_whitespace_that_words_split_on()
    {
        var result = Backslash.Expand("a  $SPACED", Env);
        Assert.Equal("a  a b  c", result.Value);
        Assert.Equal(["a", "a", "b", "c"], result.Words);
    }

    [Fact]
    public void Result_reports_matched_and_unmatched_names()
    {
        var result = Backslash.Expand("${PWD} ${NULL:-x} ${MISSING-y} $1 '$QUOTED' \\$ESCAPED ${A:-${B}}", Env);

        Assert.Equal(["NULL", "PWD"], result.MatchedNames.Order(StringComparer.Ordinal));
        Assert.Equal(["1", "A", "B", "MISSING"], result.UnmatchedNames.Order(StringComparer.Ordinal));
        Assert.Equal(6, result.ReferencedNames.Count);
    }

    [Fact]
    public void Default_word_is_expanded_even_when_not_used_and_counts_as_referenced()
    {
        // BuildKit expands the word before it looks at the variable, so the inner name is reported too.
        var result = Backslash.Expand("${PWD:-$SHELL}", Env);
        Assert.Equal("/home", result.Value);
        Assert.Contains("SHELL", result.MatchedNames);
    }

    [Fact]
    public void Lookup_function_distinguishes_unset_from_empty()
    {
        string? Lookup(string name) => name == "EMPTY" ? string.Empty : null;
        Assert.Equal("", Backslash.ProcessWord("${EMPTY-d}", Lookup));
        Assert.Equal("d", Backslash.ProcessWord("${EMPTY:-d}", Lookup));
        Assert.Equal("d", Backslash.ProcessWord("${OTHER-d}", Lookup));
    }

    [Theory]
    [InlineData("${UNSET?}", "UNSET", "is not allowed to be unset")]
    [InlineData("${UNSET:?}", "UNSET", "is not allowed to be unset")]
    [InlineData("${NULL:?}", "NULL", "is not allowed to be empty")]
    [InlineData("${UNSET?needs a value}", "UNSET", "needs a value")]
    [InlineData("${NULL:?set $SHELL}", "NULL", "set bash")]
    public void Required_modifier_fails_with_the_name_and_message(string word, string name, string reason)
    {
        var ex = Assert.Throws<RequiredVariableException>(() => Backslash.ProcessWord(word, Env));
        Assert.Equal("FARM1101", ex.Code);
        Assert.Equal(name, ex.VariableName);
        Assert.Equal(reason, ex.Reason);
        Assert.Contains(name, ex.Message);
        Assert.Contains(reason, ex.Message);
    }

    [Theory]
    [InlineData("${")]
    [InlineData("${PWD")]
    [InlineData("${PWD:-x")]
    [InlineData("${}")]
    [InlineData("he${}xx")]
    [InlineData("${:x}")]
    [InlineData("${{x}")]
    [InlineData("${PWD=x}")]
    [InlineData("${PWD:=x}")]
    [InlineData("${PWD:x}")]
    [InlineData("${ }")]
    [InlineData("${#PWD}")]
    [InlineData("${PWD/x}")]
    [InlineData("${PWD//}")]
    [InlineData("'abc")]
    [InlineData("\"abc")]
    [InlineData("\"abc\\\"")]
    [InlineData("${UNSET:-'x}")]
    public void Malformed_words_fail_with_a_syntax_error(string word)
    {
        var ex = Assert.Throws<ExpansionSyntaxException>(() => Backslash.ProcessWord(word, Env));
        Assert.Equal("FARM1102", ex.Code);
        Assert.Equal(word, ex.Word);
    }

    [Theory]
    [InlineData("${PWD#\\x}")]
    [InlineData("${PWD%%a\\b}")]
    [InlineData("${PWD/\\x/y}")]
    public void Invalid_escapes_in_patterns_fail_with_a_pattern_error(string word)
    {
        var ex = Assert.Throws<SubstitutionPatternException>(() => Backslash.ProcessWord(word, Env));
        Assert.Equal("FARM1103", ex.Code);
    }

    [Fact]
    public void Keep_unset_references_leaves_unknown_names_for_a_later_pass()
    {
        var expander = new ShellWordExpander { KeepUnsetReferences = true };
        Assert.Equal("/home $LATER ${LATER:-x} ${LATER//a/b}", expander.ProcessWord("$PWD $LATER ${LATER:-x} ${LATER//a/b}", Env));
    }

    [Fact]
    public void Keep_quotes_and_skip_quote_processing_options()
    {
        Assert.Equal("'$PWD' \"/home\"", new ShellWordExpander { KeepQuotes = true }.ProcessWord("'$PWD' \"$PWD\"", Env));
        Assert.Equal("'/home' \"bash\"", new ShellWordExpander { ProcessQuotes = false }.ProcessWord("'$PWD' \"$SHELL\"", Env));
    }

    [Fact]
    public void Release_file_name_from_the_buildkit_docs_expands()
    {
        var env = new Dictionary<string, string> { ["VERSION"] = "v1.2.3", ["TARGETOS"] = "linux", ["TARGETARCH"] = "arm", ["TARGETVARIANT"] = "v7" };
        const string Word = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
        Assert.Equal("something-v1.2.3.linux-arm-v7.tar.gz", Backslash.ProcessWord(Word, env));
        env.Remove("TARGETVARIANT");
        Assert.Equal("something-v1.2.3.linux-arm.tar.gz", Backslash.ProcessWord(Word, env));
    }

    [Fact]
    public void Only_backslash_and_backtick_are_escape_characters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShellWordExpander('^'));
    }

    [Theory]
    [InlineData("COPY", ExpansionTiming.AtBuild)]
    [InlineData("add", ExpansionTiming.AtBuild)]
    [InlineData("ENV", ExpansionTiming.AtBuild)]
    [InlineData("EXPOSE", ExpansionTiming.AtBuild)]
    [InlineData("FROM", ExpansionTiming.AtBuild)]
    [InlineData("LABEL", ExpansionTiming.AtBuild)]
    [InlineData("STOPSIGNAL", ExpansionTiming.AtBuild)]
    [InlineData("USER", ExpansionTiming.AtBuild)]
    [InlineData("VOLUME", ExpansionTiming.AtBuild)]
    [InlineData("WORKDIR", ExpansionTiming.AtBuild)]
    [InlineData("ARG", ExpansionTiming.AtBuild)]
    [InlineData("ONBUILD", ExpansionTiming.Deferred)]
    [InlineData("RUN", ExpansionTiming.None)]
    [InlineData("CMD", ExpansionTiming.None)]
    [InlineData("ENTRYPOINT", ExpansionTiming.None)]
    [InlineData("SHELL", ExpansionTiming.None)]
    [InlineData("HEALTHCHECK", ExpansionTiming.None)]
    [InlineData("BOGUS", ExpansionTiming.None)]
    public void Instruction_table_follows_the_environment_replacement_list(string keyword, ExpansionTiming expected)
    {
        Assert.Equal(expected, InstructionExpansion.For(keyword));
        Assert.Equal(expected == ExpansionTiming.AtBuild, InstructionExpansion.ExpandsVariables(keyword));
    }
}
