using System.Globalization;
using System.Text;

namespace Farm.Dockerfile.Parsing;

/// <summary>
/// Renders an AST in BuildKit's parser dump form (<c>(copy ["--from=x"] "a" "b")</c>, one line per
/// instruction), so Farm's parser can be checked against BuildKit's own test corpus.
/// </summary>
public static class AstDumper
{
    /// <summary>One line per instruction joined with <c>\n</c>, without a final newline (as BuildKit's <c>Node.Dump</c>).</summary>
    public static string Dump(DockerfileAst ast)
    {
        ArgumentNullException.ThrowIfNull(ast);
        return string.Join('\n', ast.Instructions.Select(i => "(" + Dump(i) + ")"));
    }

    /// <summary>One instruction without its outer parentheses: <c>run "echo hi"</c>.</summary>
    public static string Dump(InstructionNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var sb = new StringBuilder(node.Command);
        if (node.Flags.Count > 0)
        {
            sb.Append(" [");
            sb.AppendJoin(' ', node.Flags.Select(GoQuote.Quote));
            sb.Append(']');
        }

        foreach (var arg in node.Arguments)
        {
            sb.Append(' ').Append(GoQuote.Quote(arg));
        }

        if (node.Inner is not null)
        {
            sb.Append(" (").Append(Dump(node.Inner)).Append(')');
        }

        return sb.ToString();
    }
}

/// <summary>Go's <c>strconv.Quote</c>, which the dump format is defined by.</summary>
public static class GoQuote
{
    public static string Quote(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        var span = value.AsSpan();
        while (!span.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(span, out var rune, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                // A lone surrogate cannot come from UTF-8 text; Go would have seen U+FFFD.
                rune = Rune.ReplacementChar;
            }

            span = span[consumed..];
            AppendRune(sb, rune);
        }

        sb.Append('"');
        return sb.ToString();
    }

    private static void AppendRune(StringBuilder sb, Rune rune)
    {
        var value = rune.Value;
        switch (value)
        {
            case '"': sb.Append("\\\""); return;
            case '\\': sb.Append("\\\\"); return;
            case '\a': sb.Append("\\a"); return;
            case '\b': sb.Append("\\b"); return;
            case '\f': sb.Append("\\f"); return;
            case '\n': sb.Append("\\n"); return;
            case '\r': sb.Append("\\r"); return;
            case '\t': sb.Append("\\t"); return;
            case '\v': sb.Append("\\v"); return;
        }

        if (IsPrint(rune))
        {
            sb.Append(rune.ToString());
        }
        else if (value < ' ' || value == 0x7f)
        {
            sb.Append("\\x").Append(value.ToString("x2", CultureInfo.InvariantCulture));
        }
        else if (value < 0x10000)
        {
            sb.Append("\\u").Append(value.ToString("x4", CultureInfo.InvariantCulture));
        }
        else
        {
            sb.Append("\\U").Append(value.ToString("x8", CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Go's <c>unicode.IsPrint</c>: letters, marks, numbers, punctuation, symbols and U+0020.</summary>
    private static bool IsPrint(Rune rune)
    {
        if (rune.Value == ' ')
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => true,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
            UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => true,
            UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol => true,
            _ => false,
        };
    }
}
