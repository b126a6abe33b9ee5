using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Farm.Cli.Build;
using Farm.Cli.Progress;
using Farm.Cli.Remote;
using Farm.Contracts;

namespace Farm.Cli;

/// <summary>
/// <c>farm system df</c> and <c>farm system prune</c>, as docker's <c>system df</c> and <c>builder prune</c>: the build
/// cache of the local farm daemon, or of the coordinator at <c>--farm</c> / <c>FARM_HOST</c> (GET /system/df,
/// POST /system/prune, the latter with an admin token).
/// </summary>
internal static class SystemCommands
{
    public static Command Create()
    {
        var system = new Command("system", "The farm's disk usage and build cache.");
        system.Subcommands.Add(DiskUsage());
        system.Subcommands.Add(Prune());
        return system;
    }

    private static Option<string> FarmOption() =>
        new("--farm") { Description = "The coordinator's HTTP address (default: $FARM_HOST; none: the local farm daemon)." };

    private static Command DiskUsage()
    {
        var farmUrl = FarmOption();
        var format = new Option<string>("--format") { Description = "'json' prints the farm's answer as JSON; default a table." };
        var command = new Command("df", "Show how much the images and the build cache take, and what farm system prune would reclaim.") { farmUrl, format };
        command.SetAction((parse, ct) => BuildCommand.RunAsync(parse, async () =>
        {
            var json = parse.GetValue(format) switch
            {
                null or "" or "table" => false,
                "json" => true,
                var other => throw new InvalidCliArgumentException($"--format '{other}' is not supported; use json or leave it out"),
            };
            using var farm = await ConnectAsync(parse.GetValue(farmUrl), parse.InvocationConfiguration.Error, ct).ConfigureAwait(false);
            var usage = await farm.DiskUsageAsync(ct).ConfigureAwait(false) as JsonObject
                ?? throw new RemoteFarmException(farm.Url, "answered GET /system/df with something that is not a JSON object");
            var output = parse.InvocationConfiguration.Output;
            if (json)
            {
                output.WriteLine(usage.ToJsonString());
                return 0;
            }

            output.WriteLine($"{"TYPE",-14}{"TOTAL",-8}{"SIZE",-12}RECLAIMABLE");
            if (usage["images"] is JsonObject images)
            {
                output.WriteLine($"{"Images",-14}{BuildProgress.Num(images, "count"),-8}{FormatSize(BuildProgress.Num(images, "bytes")),-12}0B");
            }

            var cache = usage["buildCache"] as JsonObject ?? [];
            output.WriteLine($"{"Build Cache",-14}{BuildProgress.Num(cache, "entries"),-8}{FormatSize(BuildProgress.Num(cache, "bytes")),-12}{FormatSize(BuildProgress.Num(cache, "reclaimable"))}");
            return 0;
        }));
        return command;
    }

    private static Command Prune()
    {
        var farmUrl = FarmOption();
        var force = new Option<bool>("--force", "-f") { Description = "Do not ask for confirmation." };
        var filter = new Option<string[]>("--filter") { Description = "until=DURATION: remove only entries not used within DURATION (e.g. 24h, 90m, 1h30m)." };
        var keepStorage = new Option<string>("--keep-storage") { Description = "Remove entries, least recently used first, only until the cache takes at most SIZE (e.g. 512MB, 2GiB; binary units, as docker)." };
        var command = new Command("prune", "Remove build cache entries (all unused ones by default), least recently used first, and the layers nothing needs any more.") { farmUrl, force, filter, keepStorage };
        command.SetAction((parse, ct) => BuildCommand.RunAsync(parse, async () =>
        {
            var output = parse.InvocationConfiguration.Output;
            var until = ParseFilters(parse.GetValue(filter) ?? []);
            var keep = parse.GetValue(keepStorage) is { Length: > 0 } size ? ParseSize(size) : (long?)null;
            if (!parse.GetValue(force))
            {
                var what = until is { } u ? $"build cache entries not used within {u}" : keep is { } k ? $"the least recently used build cache entries beyond {FormatSize(k)}" : "all build cache";
                output.Write($"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
                output.Flush();
                var answer = await Console.In.ReadLineAsync(ct).ConfigureAwait(false);
                if (answer?.Trim() is not ("y" or "Y" or "yes"))
                {
                    output.WriteLine();
                    return 0;
                }
            }

            var request = new JsonObject();
            if (until is { } t)
            {
                request["untilSeconds"] = t.TotalSeconds;
            }

            if (keep is { } bytes)
            {
                request["keepStorage"] = bytes;
            }

            using var farm = await ConnectAsync(parse.GetValue(farmUrl), parse.InvocationConfiguration.Error, ct).ConfigureAwait(false);
            var pruned = await farm.PruneAsync(request, ct).ConfigureAwait(false) as JsonObject ?? [];
            output.WriteLine($"Deleted build cache entries: {BuildProgress.Num(pruned, "entriesRemoved")} ({BuildProgress.Num(pruned, "layersRemoved")} layers no longer used)");
            if (pruned["blobsDeleted"]?.GetValue<bool>() == true)
            {
                output.WriteLine($"Total reclaimed space: {FormatSize(BuildProgress.Num(pruned, "reclaimedBytes"))}");
            }
            else
            {
                output.WriteLine($"Total reclaimed space: 0B (the farm's layers, {FormatSize(BuildProgress.Num(pruned, "unreferencedBytes"))} no longer referenced, stay in its registry until the registry's garbage collection runs)");
            }

            if (pruned["warning"]?.GetValue<string>() is { Length: > 0 } warning)
            {
                // The entries are gone either way; the registry kept what refers to their layers.
                output.WriteLine($"Cache manifests kept: {BuildProgress.Num(pruned, "referencesKept")}: {warning}");
            }

            return 0;
        }));
        return command;
    }

    private static async Task<RemoteFarm> ConnectAsync(string? farmUrl, TextWriter error, CancellationToken cancellationToken)
    {
        var url = farmUrl is { Length: > 0 } given ? given : Environment.GetEnvironmentVariable("FARM_HOST") is { Length: > 0 } host ? host : null;
        return url is null
            ? await new Local.LocalDaemon().ConnectAsync(error, cancellationToken).ConfigureAwait(false)
            : new RemoteFarm(url);
    }

    /// <summary><c>until=DURATION</c> (the only filter); null when none is given.</summary>
    internal static TimeSpan? ParseFilters(IEnumerable<string> filters)
    {
        TimeSpan? until = null;
        foreach (var filter in filters)
        {
            var eq = filter.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 || !filter[..eq].Trim().Equals("until", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidPruneFilterException($"--filter '{filter}' is not supported; use --filter until=DURATION (e.g. until=24h)");
            }

            until = ParseDuration(filter[(eq + 1)..].Trim());
        }

        return until;
    }

    /// <summary>A Go-style duration, as docker takes: <c>24h</c>, <c>90m</c>, <c>1h30m</c>, <c>45s</c>, <c>1.5h</c>.</summary>
    internal static TimeSpan ParseDuration(string text)
    {
        var total = TimeSpan.Zero;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            if (unitStart == start || !double.TryParse(text[start..unitStart], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            {
                throw new InvalidPruneFilterException($"until={text} is not a duration; write it as 24h, 90m, 1h30m or 45s");
            }

            total += text[unitStart..i] switch
            {
                "h" => TimeSpan.FromHours(value),
                "m" => TimeSpan.FromMinutes(value),
                "s" => TimeSpan.FromSeconds(value),
                "ms" => TimeSpan.FromMilliseconds(value),
                _ => throw new InvalidPruneFilterException($"until={text} is not a duration; its units are h, m, s and ms (24h, 90m, 1h30m, 45s)"),
            };
        }

        return text.Length == 0 ? throw new InvalidPruneFilterException("until= needs a duration, e.g. until=24h") : total;
    }

    /// <summary>A size: bytes, or with a unit <c>k</c>, <c>m</c>, <c>g</c>, <c>t</c> (optionally followed by <c>b</c> or <c>ib</c>), binary as docker's <c>--keep-storage</c>.</summary>
    internal static long ParseSize(string text)
    {
        var trimmed = text.Trim().ToLowerInvariant();
        var end = 0;
        while (end < trimmed.Length && (char.IsAsciiDigit(trimmed[end]) || trimmed[end] == '.'))
        {
            end++;
        }

        var unit = trimmed[end..].Trim();
        long multiplier = unit switch
        {
            "" or "b" => 1,
            "k" or "kb" or "kib" => 1L << 10,
            "m" or "mb" or "mib" => 1L << 20,
            "g" or "gb" or "gib" => 1L << 30,
            "t" or "tb" or "tib" => 1L << 40,
            _ => 0,
        };
        if (end == 0 || multiplier == 0 || !double.TryParse(trimmed[..end], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value < 0)
        {
            throw new InvalidPruneFilterException($"--keep-storage '{text}' is not a size; write bytes, or e.g. 512MB or 2GiB");
        }

        return (long)(value * multiplier);
    }

    /// <summary>docker's sizes: decimal units, three significant digits (<c>2.1MB</c>, <c>512kB</c>, <c>0B</c>).</summary>
    internal static string FormatSize(double bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        var unit = 0;
        while (bytes >= 1000 && unit < units.Length - 1)
        {
            bytes /= 1000;
            unit++;
        }

        return unit == 0 ? $"{bytes:0}B" : string.Create(CultureInfo.InvariantCulture, $"{bytes:0.##}{units[unit]}");
    }
}

/// <summary>FARM5055: <c>farm system prune</c> got a filter or a size it cannot read.</summary>
internal sealed class InvalidPruneFilterException(string message)
    : FarmException(FarmErrorCodes.InvalidPruneFilter, message);
