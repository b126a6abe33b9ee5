using System.Globalization;

namespace Farm.Cli;

/// <summary>
/// The times <c>farm logs --since</c> takes, as docker's: a duration back from now (Go syntax: <c>10m</c>, <c>1h30m</c>,
/// <c>45s</c>), an RFC 3339 date and time (<c>2026-12-06T17:00:00Z</c>, with a fraction or an offset; without a zone, the
/// local time), a date (<c>2026-12-06</c>), or a Unix timestamp in seconds with an optional fraction
/// (<c>1765040400</c>, <c>1765040400.5</c>).
/// </summary>
internal static class LogSince
{
    private static readonly string[] ZonedFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
        "yyyy-MM-dd'T'HH:mm:ssK",
        "yyyy-MM-dd'T'HH:mmK",
    ];

    private static readonly string[] LocalFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF",
        "yyyy-MM-dd'T'HH:mm:ss",
        "yyyy-MM-dd'T'HH:mm",
        "yyyy-MM-dd'T'HH",
        "yyyy-MM-dd",
    ];

    /// <summary>
    /// A time as <c>farm logs -t</c> prints it before a line, as docker does: RFC 3339 in UTC with nanoseconds (.NET
    /// keeps ticks of 100 ns, so the last two digits are 0), the same form as a container's lines.
    /// </summary>
    public static string Stamp(DateTimeOffset at) =>
        at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00Z";

    /// <summary>The instant <paramref name="value"/> names, durations counted back from <paramref name="now"/>.</summary>
    /// <exception cref="InvalidCliArgumentException">None of the forms above (FARM5010).</exception>
    public static DateTimeOffset Parse(string value, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = value.Trim();
        // "0" is a Unix timestamp in docker, not a duration.
        if (text != "0" && text.Length > 0 && char.IsAsciiLetter(text[^1]) && text[^1] is not ('Z' or 'z') && TryDuration(text, out var back))
        {
            return now - back;
        }

        if (text.Length > 0 && text.All(c => char.IsAsciiDigit(c) || c == '.') && text.Count(c => c == '.') <= 1 && text[0] != '.')
        {
            var dot = text.IndexOf('.', StringComparison.Ordinal);
            var seconds = long.Parse(dot < 0 ? text : text[..dot], NumberStyles.None, CultureInfo.InvariantCulture);
            var fraction = dot < 0 || dot == text.Length - 1 ? 0 : long.Parse(text[(dot + 1)..].PadRight(7, '0')[..7], NumberStyles.None, CultureInfo.InvariantCulture);
            return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(fraction);
        }

        // Nanoseconds (what -t prints, docker's form) are kept to .NET's 100 ns ticks.
        text = System.Text.RegularExpressions.Regex.Replace(text, @"(T\d\d:\d\d:\d\d\.\d{7})\d+", "$1");
        if (DateTimeOffset.TryParseExact(text, ZonedFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var zoned) && (text.EndsWith('Z') || text.EndsWith('z') || HasOffset(text)))
        {
            return zoned;
        }

        if (DateTime.TryParseExact(text, LocalFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var local))
        {
            return new DateTimeOffset(local);
        }

        throw new InvalidCliArgumentException($"--since {value} is not a time: give a duration back from now (10m, 1h30m), an RFC 3339 time (2026-12-06T17:00:00Z), a date (2026-12-06) or a Unix timestamp (1765040400)");
    }

    /// <summary>A Go duration (<c>time.ParseDuration</c>): decimal numbers each with a unit of ns, us, ms, s, m or h.</summary>
    private static bool TryDuration(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.')
            {
                i++;
            }

            if (unitStart == start || !double.TryParse(text[start..unitStart], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }

            double? ticks = text[unitStart..i] switch
            {
                "ns" => number / 100,
                "us" or "µs" => number * 10,
                "ms" => number * TimeSpan.TicksPerMillisecond,
                "s" => number * TimeSpan.TicksPerSecond,
                "m" => number * TimeSpan.TicksPerMinute,
                "h" => number * TimeSpan.TicksPerHour,
                _ => null,
            };
            if (ticks is not { } t)
            {
                return false;
            }

            value += TimeSpan.FromTicks((long)t);
        }

        return true;
    }

    private static bool HasOffset(string text) => text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':';
}
