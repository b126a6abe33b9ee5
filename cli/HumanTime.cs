namespace Farm.Cli;

/// <summary>Ages as docker prints them (<c>units.HumanDuration</c> of docker/go-units): "2 minutes", "3 days", "5 weeks".</summary>
internal static class HumanTime
{
    /// <summary>How long ago <paramref name="since"/> was, in docker's words, without "ago".</summary>
    public static string Since(DateTimeOffset since, DateTimeOffset now) => Duration(now - since);

    /// <summary>docker's thresholds: seconds, then minutes, hours (rounded) below 48, days below two weeks, weeks below two months, months below two years, years.</summary>
    public static string Duration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < 1)
        {
            return "Less than a second";
        }

        if (seconds < 60)
        {
            return seconds == 1 ? "1 second" : $"{seconds} seconds";
        }

        var minutes = (long)d.TotalMinutes;
        if (minutes < 60)
        {
            return minutes == 1 ? "About a minute" : $"{minutes} minutes";
        }

        var hours = (long)(d.TotalHours + 0.5);
        return hours == 1 ? "About an hour"
            : hours < 48 ? $"{hours} hours"
            : hours < 24 * 7 * 2 ? $"{hours / 24} days"
            : hours < 24 * 30 * 2 ? $"{hours / 24 / 7} weeks"
            : hours < 24 * 365 * 2 ? $"{hours / 24 / 30} months"
            : $"{(long)d.TotalHours / 24 / 365} years";
    }
}
