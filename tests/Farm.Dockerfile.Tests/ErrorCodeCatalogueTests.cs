using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Farm.Contracts;
using Farm.Testing;

namespace Farm.Dockerfile.Tests;

/// <summary>
/// <see cref="FarmErrorCodes"/> is the one place a code is defined: each code once, well-formed, documented in
/// docs/errors.md, and no production source spells a code as a string literal of its own.
/// </summary>
public sealed partial class ErrorCodeCatalogueTests
{
    /// <summary>The projects whose sources make up the product (tests, bench and examples are not scanned).</summary>
    private static readonly string[] ProductionFolders = ["contracts", "oci", "dockerfile", "telemetry", "worker", "coordinator", "cli"];

    private static readonly string CatalogueFile = Path.Combine("contracts", "ErrorCodes.cs");

    private static IReadOnlyList<(string Name, string Code)> Catalogue() =>
        [.. typeof(FarmErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (f.Name, (string)f.GetRawConstantValue()!))];

    [Fact]
    public void The_catalogue_defines_every_code_once()
    {
        var codes = Catalogue();
        Assert.True(codes.Count > 100, $"FarmErrorCodes has {codes.Count} codes; expected the whole catalogue");
        var duplicates = codes.GroupBy(c => c.Code)
            .Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(c => c.Name))}")
            .ToList();
        Assert.True(duplicates.Count == 0, "Codes defined more than once (give one of them a new code): " + string.Join("; ", duplicates));
    }

    [Fact]
    public void Every_catalogue_code_is_FARM_and_four_digits()
    {
        var malformed = Catalogue().Where(c => !CodeShape().IsMatch(c.Code)).Select(c => $"{c.Name} = \"{c.Code}\"").ToList();
        Assert.True(malformed.Count == 0, "Codes not of the form FARM and four digits: " + string.Join(", ", malformed));
    }

    [Fact]
    public void Docs_errors_md_lists_exactly_the_catalogue_codes()
    {
        var path = Path.Combine(RepoPaths.RepoRoot, "docs", "errors.md");
        var listed = AnyCode().Matches(File.ReadAllText(path)).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        var defined = Catalogue().Select(c => c.Code).ToHashSet(StringComparer.Ordinal);
        Assert.True(defined.IsSubsetOf(listed), "docs/errors.md misses " + string.Join(", ", defined.Except(listed).Order(StringComparer.Ordinal)));
        Assert.True(listed.IsSubsetOf(defined), "docs/errors.md lists codes FarmErrorCodes does not define: " + string.Join(", ", listed.Except(defined).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public void No_production_source_spells_a_code_as_a_string_literal()
    {
        var offences = new List<string>();
        var scanned = 0;
        foreach (var folder in ProductionFolders)
        {
            var root = Path.Combine(RepoPaths.RepoRoot, folder);
            foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(RepoPaths.RepoRoot, file);
                var parts = relative.Split(Path.DirectorySeparatorChar);
                if (parts.Contains("bin") || parts.Contains("obj") || relative == CatalogueFile)
                {
                    continue;
                }

                scanned++;
                foreach (var literal in StringLiterals(File.ReadAllText(file)))
                {
                    foreach (Match m in AnyCode().Matches(literal.Text))
                    {
                        offences.Add($"{relative}:{literal.Line}: {m.Value}");
                    }
                }
            }
        }

        Assert.True(scanned > 100, $"only {scanned} production sources found under {RepoPaths.RepoRoot}");
        Assert.True(offences.Count == 0, "Use the FarmErrorCodes constant instead of a literal code: " + string.Join("; ", offences));
    }

    [Fact]
    public void The_literal_scan_sees_codes_in_strings_and_holes_but_not_in_comments()
    {
        const string source = """"
            // FARM9001 in a line comment, "FARM9002" quoted in it
            /* FARM9003 in a block comment */
            /// <summary>FARM9004 in a doc comment</summary>
            var a = "FARM9101: plain";
            var b = $"{x}: FARM9102 after a hole {(y ? "FARM9103" : "no")} {{FARM9104}}";
            var c = @"verbatim ""FARM9105""";
            var d = $@"{z:0} FARM9106";
            var e = '"'; var url = "http://example//FARM9107"; // FARM9005 after a string with //
            var f = """
                raw FARM9108
                """;
            """";
        var found = StringLiterals(source)
            .SelectMany(l => AnyCode().Matches(l.Text).Select(m => m.Value))
            .ToList();
        Assert.Equal(
            new[] { "FARM9101", "FARM9102", "FARM9103", "FARM9104", "FARM9105", "FARM9106", "FARM9107", "FARM9108" },
            found.Order(StringComparer.Ordinal));
    }

    [GeneratedRegex(@"^FARM\d{4}$")]
    private static partial Regex CodeShape();

    [GeneratedRegex(@"FARM\d{4}")]
    private static partial Regex AnyCode();

    /// <summary>
    /// The text of every string literal in C# source (regular, verbatim, interpolated without its holes, raw),
    /// with the line it starts on; comments and char literals are skipped. Written by hand because the test has
    /// no Roslyn: it knows just enough of the lexical grammar to tell a string from a comment.
    /// </summary>
    private static List<(int Line, string Text)> StringLiterals(string source)
    {
        var found = new List<(int, string)>();
        var i = 0;
        ScanCode(source, ref i, inHole: false, found);
        return found;
    }

    private static void ScanCode(string s, ref int i, bool inHole, List<(int, string)> found)
    {
        var depth = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (c == '/' && At(s, i + 1) == '/')
            {
                while (i < s.Length && s[i] != '\n')
                {
                    i++;
                }
            }
            else if (c == '/' && At(s, i + 1) == '*')
            {
                var end = s.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? s.Length : end + 2;
            }
            else if (c == '\'')
            {
                i++;
                while (i < s.Length && s[i] != '\'')
                {
                    i += s[i] == '\\' ? 2 : 1;
                }

                i++;
            }
            else if (c is '"' or '$' or '@' && StringStart(s, i) is { } start)
            {
                ScanString(s, ref i, start, found);
            }
            else if (inHole && c is '{' or '(' or '[')
            {
                depth++;
                i++;
            }
            else if (inHole && c is ')' or ']')
            {
                depth--;
                i++;
            }
            else if (inHole && c == '}')
            {
                if (depth == 0)
                {
                    return;
                }

                depth--;
                i++;
            }
            else if (inHole && depth == 0 && c == ':')
            {
                // The format part of a hole ({x:0}) runs to its closing brace.
                while (i < s.Length && s[i] != '}')
                {
                    i++;
                }
            }
            else
            {
                i++;
            }
        }
    }

    private readonly record struct Start(int Prefix, bool Interpolated, bool Verbatim, int Quotes);

    /// <summary>The shape of a string literal that starts at <paramref name="i"/>, or null when none does.</summary>
    private static Start? StringStart(string s, int i)
    {
        var j = i;
        var dollars = 0;
        var verbatim = false;
        while (j < s.Length && (s[j] == '$' || (s[j] == '@' && !verbatim)))
        {
            dollars += s[j] == '$' ? 1 : 0;
            verbatim |= s[j] == '@';
            j++;
        }

        if (At(s, j) != '"')
        {
            return null;
        }

        var quotes = 0;
        while (At(s, j + quotes) == '"')
        {
            quotes++;
        }

        // "" is an empty regular string, """ or more opens a raw one (@""" is a verbatim string opening with a quote).
        return new Start(j - i, dollars > 0, verbatim, quotes >= 3 && !verbatim ? quotes : 1);
    }

    private static void ScanString(string s, ref int i, Start start, List<(int, string)> found)
    {
        var line = 1 + s.AsSpan(0, i).Count('\n');
        i += start.Prefix + start.Quotes;
        var text = new StringBuilder();
        if (start.Quotes >= 3)
        {
            var close = new string('"', start.Quotes);
            var end = s.IndexOf(close, i, StringComparison.Ordinal);
            end = end < 0 ? s.Length : end;
            found.Add((line, s[i..end]));
            i = Math.Min(s.Length, end + start.Quotes);
            return;
        }

        while (i < s.Length)
        {
            var c = s[i];
            if (c == '"' && start.Verbatim && At(s, i + 1) == '"')
            {
                text.Append('"');
                i += 2;
            }
            else if (c == '"' || (c == '\n' && !start.Verbatim))
            {
                i++;
                break;
            }
            else if (c == '\\' && !start.Verbatim)
            {
                text.Append(c).Append(At(s, i + 1));
                i += 2;
            }
            else if (start.Interpolated && c is '{' or '}' && At(s, i + 1) == c)
            {
                text.Append(c);
                i += 2;
            }
            else if (start.Interpolated && c == '{')
            {
                i++;
                ScanCode(s, ref i, inHole: true, found);
                text.Append(' ');
                i++;
            }
            else
            {
                text.Append(c);
                i++;
            }
        }

        found.Add((line, text.ToString()));
    }

    private static char At(string s, int i) => i < s.Length ? s[i] : '\0';
}
