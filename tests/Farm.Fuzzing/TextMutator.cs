using System.Text;

namespace Farm.Fuzzing;

/// <summary>
/// Mutations of Dockerfile text: byte flips, insertions and deletions of bytes and tokens, lines spliced in from other
/// corpus cases, numbers at their limits, and generated structures that stress a parser (deep JSON nesting, huge lines,
/// many continuation lines, heredocs without terminators, ONBUILD chains, deep <c>${...}</c> nesting, ARGs that double).
/// </summary>
public static class TextMutator
{
    private static readonly string[] Tokens =
    [
        "\\", "`", "\"", "'", "$", "${", "}", "${a:-", "${a:+", "${a#", "${a%%", "[", "]", "{", "=", "-", "--", "#", ":", ",",
        "<<", "<<EOF", "<<-EOF", "<<'EOF'", "<<\"EOF\"", "0<<A", "\nEOF\n", "\n", "\r", "\r\n", "\t", " ", "\v", "\f", "\0",
        "\uFEFF", "\u00A0", "\u2028", "\uFFFD", "é", "♥", "\U0001F600", "*", "?", "**", "/", "..", "../", "/..", "\\\n",
        "FROM ", "FROM scratch\n", "FROM a AS b\n", " AS ", "RUN ", "CMD ", "ENTRYPOINT ", "COPY ", "ADD ", "ENV ", "ARG ",
        "LABEL ", "EXPOSE ", "USER ", "WORKDIR ", "VOLUME ", "SHELL ", "ONBUILD ", "HEALTHCHECK ", "HEALTHCHECK NONE",
        "STOPSIGNAL ", "MAINTAINER ", "--from=", "--from=0", "--from=-1", "--chown=", "--chmod=", "--link", "--parents",
        "--exclude=", "--platform=", "--mount=type=cache,target=/x", "--network=", "--security=", "--interval=",
        "--timeout=", "--retries=", "--start-period=", "--start-interval=", "--checksum=", "--keep-git-dir", "# escape=`\n",
        "# escape=\\\n", "# syntax=docker/dockerfile:1\n", "# check=skip=all\n", "[\"a\"]", "[\"a\", 1]", "[]", "[\"\\ud800\"]",
        "$BUILDPLATFORM", "$TARGETPLATFORM", "${TARGETARCH}", "$$", "${", "${}", "${:-}", "${a?err}", "${a:?}", "\\$",
    ];

    private static readonly string[] Limits =
    [
        "0", "-1", "1", "65535", "65536", "-65536", "2147483647", "2147483648", "-2147483648", "-2147483649",
        "4294967295", "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "18446744073709551616", "99999999999999999999999999999999", "1e308", "1e309", "0x7fffffff", "00000000000000000001",
        "1.5", "NaN", "-0", "+1", "1h1h", "9999999999h", "2562047h", "2562048h", "-1s", "0s", "1ns", "1e3ms", "٣",
    ];

    /// <summary>A mutated copy of <paramref name="text"/>; <paramref name="corpus"/> supplies lines to splice in.</summary>
    public static string Mutate(string text, Random random, IReadOnlyList<string> corpus, FuzzScale scale)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(scale);
        var op = random.Next(100);
        return op switch
        {
            < 12 => Encoding.UTF8.GetString(FlipBytes(Encoding.UTF8.GetBytes(text), random)),
            < 28 => Insert(text, random, Tokens[random.Next(Tokens.Length)]),
            < 38 => Delete(text, random),
            < 44 => Duplicate(text, random),
            < 58 => Splice(text, random, corpus[random.Next(corpus.Count)]),
            < 64 => SwapLines(text, random),
            < 72 => NumberAtLimit(text, random),
            < 76 => ChangeLineEndings(text, random),
            < 80 => FlipCase(text, random),
            _ => InsertLines(text, random, Generate(random, scale)),
        };
    }

    /// <summary>A structure that stresses a parser, at a random size up to <see cref="FuzzScale.MaxRepeat"/>.</summary>
    public static string Generate(Random random, FuzzScale scale)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(scale);
        // Sizes on a log scale, so small and huge are both common.
        var n = (int)Math.Min(scale.MaxRepeat, Math.Pow(2, random.NextDouble() * Math.Log2(scale.MaxRepeat)));
        var chunk = Tokens[random.Next(Tokens.Length)];
        return random.Next(22) switch
        {
            0 => "RUN " + new string('[', n) + "\"x\"" + new string(']', n) + "\n",
            1 => "CMD " + new string('[', n) + "\n",
            2 => "RUN " + Repeat("a", n * 8) + "\n",
            3 => "RUN " + Repeat(chunk, n) + "\n",
            4 => "RUN a \\\n" + Repeat("  b \\\n", n) + "c\n",
            5 => "RUN <<EOF\n" + Repeat("line\n", n),
            6 => "RUN " + Repeat("<<A" + (n % 7) + " ", Math.Min(n, 5_000)) + "\n" + Repeat("x\n", n),
            7 => "COPY <<-\"EOF\" /x\n" + Repeat("\tbody \\\n", n),
            8 => Repeat("ONBUILD ", n) + "RUN x\n",
            9 => "ENV a=" + Repeat("${a:-", n) + "x" + new string('}', n) + "\n",
            10 => "ARG a=" + Repeat("${", n) + "\n",
            11 => Doubling(Math.Min(n, 40)),
            12 => Stages(n),
            13 => "COPY " + Repeat("--from=a ", n) + "x y\n",
            14 => "LABEL " + Repeat("k=v ", n) + "\n",
            // Each range is 65,535 ports (as in Docker): kept to a few in small runs, see bench/results/fuzz.md.
            15 => "EXPOSE " + Repeat("1-65535/tcp ", Math.Min(n, scale.MaxRepeat / 400)) + "\n",
            16 => Repeat("# comment \\\n", n) + "FROM a\n",
            17 => Repeat("\\\n", n),
            18 => "RUN " + Repeat("\"", n) + "\n",
            19 => "HEALTHCHECK --interval=" + Limits[random.Next(Limits.Length)] + " CMD " + Repeat("[", Math.Min(n, 20_000)) + "\n",
            20 => Repeat("# escape=`\n", Math.Min(n, 4)) + "FROM a\nRUN x `\n",
            _ => "RUN " + Repeat("$" + (char)('a' + random.Next(26)), n) + "\n",
        };
    }

    /// <summary>ARGs that each repeat the last one twice: 2^n characters if expanded eagerly.</summary>
    private static string Doubling(int n)
    {
        var sb = new StringBuilder("FROM scratch\nARG a0=xxxxxxxx\n");
        for (var i = 1; i <= n; i++)
        {
            sb.Append("ARG a").Append(i).Append("=$a").Append(i - 1).Append("$a").Append(i - 1).Append('\n');
        }

        return sb.Append("RUN echo $a").Append(n).Append('\n').ToString();
    }

    private static string Stages(int n)
    {
        var sb = new StringBuilder("FROM scratch AS s0\n");
        for (var i = 1; i < n; i++)
        {
            sb.Append("FROM s").Append(i - 1).Append(" AS s").Append(i).Append("\nCOPY --from=s").Append(i / 2).Append(" /a /b\n");
        }

        return sb.ToString();
    }

    private static string Repeat(string chunk, int n)
    {
        var sb = new StringBuilder(chunk.Length * n);
        for (var i = 0; i < n; i++)
        {
            sb.Append(chunk);
        }

        return sb.ToString();
    }

    public static byte[] FlipBytes(byte[] bytes, Random random)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(random);
        var copy = (byte[])bytes.Clone();
        if (copy.Length == 0)
        {
            return [(byte)random.Next(256)];
        }

        var flips = 1 + random.Next(4);
        for (var i = 0; i < flips; i++)
        {
            var at = random.Next(copy.Length);
            copy[at] = random.Next(3) switch
            {
                0 => (byte)(copy[at] ^ (1 << random.Next(8))),
                1 => (byte)random.Next(256),
                // Bytes that make UTF-8 invalid: continuation without lead, overlong lead, surrogate lead, 0xFF.
                _ => new byte[] { 0x80, 0xC0, 0xC1, 0xED, 0xF5, 0xFF, 0xFE, 0x00 }[random.Next(8)],
            };
        }

        return copy;
    }

    private static int Position(string text, Random random) => text.Length == 0 ? 0 : random.Next(text.Length + 1);

    private static string Insert(string text, Random random, string token) => text.Insert(Position(text, random), token);

    private static string Delete(string text, Random random)
    {
        if (text.Length == 0)
        {
            return text;
        }

        var at = random.Next(text.Length);
        var length = Math.Min(text.Length - at, 1 + random.Next(random.Next(2) == 0 ? 4 : 64));
        return text.Remove(at, length);
    }

    private static string Duplicate(string text, Random random)
    {
        if (text.Length == 0)
        {
            return text;
        }

        var at = random.Next(text.Length);
        var length = Math.Min(text.Length - at, 1 + random.Next(256));
        var piece = text.Substring(at, length);
        return text.Insert(Position(text, random), string.Concat(Enumerable.Repeat(piece, 1 + random.Next(8))));
    }

    private static string Splice(string text, Random random, string other)
    {
        var mine = text.Split('\n').ToList();
        var theirs = other.Split('\n');
        var from = random.Next(theirs.Length);
        var count = Math.Min(theirs.Length - from, 1 + random.Next(6));
        var at = random.Next(mine.Count + 1);
        if (random.Next(2) == 0 && at < mine.Count)
        {
            mine.RemoveAt(at);
        }

        mine.InsertRange(at, theirs.Skip(from).Take(count));
        return string.Join('\n', mine);
    }

    private static string SwapLines(string text, Random random)
    {
        var lines = text.Split('\n');
        if (lines.Length < 2)
        {
            return text;
        }

        var a = random.Next(lines.Length);
        var b = random.Next(lines.Length);
        (lines[a], lines[b]) = (lines[b], lines[a]);
        return string.Join('\n', lines);
    }

    private static string NumberAtLimit(string text, Random random)
    {
        var limit = Limits[random.Next(Limits.Length)];
        var digits = Enumerable.Range(0, text.Length).Where(i => char.IsAsciiDigit(text[i]) && (i == 0 || !char.IsAsciiDigit(text[i - 1]))).ToList();
        if (digits.Count == 0)
        {
            return Insert(text, random, limit);
        }

        var start = digits[random.Next(digits.Count)];
        var end = start;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        return string.Concat(text.AsSpan(0, start), limit, text.AsSpan(end));
    }

    private static string ChangeLineEndings(string text, Random random) => random.Next(3) switch
    {
        0 => text.Replace("\n", "\r\n", StringComparison.Ordinal),
        1 => text.Replace("\n", "\r", StringComparison.Ordinal),
        _ => text.Replace("\r", "", StringComparison.Ordinal).TrimEnd('\n'),
    };

    private static string FlipCase(string text, Random random)
    {
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (random.Next(4) == 0)
            {
                chars[i] = char.IsUpper(chars[i]) ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
            }
        }

        return new string(chars);
    }

    private static string InsertLines(string text, Random random, string lines)
    {
        var breaks = new List<int> { 0, text.Length };
        for (var i = text.IndexOf('\n', StringComparison.Ordinal); i >= 0; i = text.IndexOf('\n', i + 1))
        {
            breaks.Add(i + 1);
        }

        var at = breaks[random.Next(breaks.Count)];
        var prefix = at > 0 && text[at - 1] != '\n' ? "\n" : "";
        return string.Concat(text.AsSpan(0, at), prefix, lines, text.AsSpan(at));
    }
}
