using System.Text.Json;

namespace Farm.Containers.Runc;

/// <summary>runc's JSON log (<c>runc --log FILE --log-format json</c>).</summary>
internal static class RuncLog
{
    /// <summary>The last error runc logged, which says why a process could not start; null when none.</summary>
    public static string? LastError(string logFile)
    {
        if (!File.Exists(logFile))
        {
            return null;
        }

        string? last = null;
        foreach (var line in File.ReadLines(logFile))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("level", out var level) && level.GetString() is "error" or "fatal"
                    && doc.RootElement.TryGetProperty("msg", out var msg))
                {
                    last = msg.GetString();
                }
            }
            catch (JsonException)
            {
                // runc writes plain text before its JSON logger is set up; such lines carry no verdict.
            }
        }

        return last;
    }
}
