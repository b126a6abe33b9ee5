using System.Globalization;
using System.Text.Json.Nodes;
using static Farm.Cli.Progress.BuildProgress;

namespace Farm.Cli.Progress;

/// <summary>
/// <c>--progress plain</c>: BuildKit's numbered lines, one vertex per step (<c>#3 [build 2/4] RUN make</c>), its
/// output prefixed with the seconds since it started (<c>#3 0.412 cc -o app</c>), then <c>#3 CACHED</c> or
/// <c>#3 DONE 0.4s</c>.
/// </summary>
internal sealed class PlainRenderer(StepLabels labels, TextWriter output) : IProgressRenderer
{
    private readonly Dictionary<string, (int Number, DateTimeOffset Started)> _steps = new(StringComparer.Ordinal);
    private readonly HashSet<string> _done = new(StringComparer.Ordinal);
    private int _next = 1;

    public void Render(JsonObject buildEvent)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        switch (Str(buildEvent, "type"))
        {
            case "ContextPacked":
                {
                    var n = _next++;
                    Line($"#{n} [internal] load build context");
                    Line($"#{n} transferring context: {Num(buildEvent, "files")} files, {HumanBytes((long)Num(buildEvent, "bytes"))}");
                    Line($"#{n} DONE {Seconds(TimeSpan.FromMilliseconds(Num(buildEvent, "durationMs")))}");
                    break;
                }

            case "ContextFetched":
                {
                    // Fetched by the farm, not this client (a URL context sent to a remote farm).
                    var n = _next++;
                    Line($"#{n} [internal] farm fetched build context {Str(buildEvent, "url")}");
                    Line($"#{n} {Str(buildEvent, "kind")} {(Str(buildEvent, "commit") is { Length: > 0 } commit ? "commit " + commit + ", " : string.Empty)}{HumanBytes((long)Num(buildEvent, "bytes"))}");
                    Line(buildEvent["cached"]?.GetValue<bool>() == true ? $"#{n} CACHED" : $"#{n} DONE");
                    break;
                }

            case "BaseImageResolved":
                {
                    var n = _next++;
                    Line($"#{n} [internal] load metadata for {Str(buildEvent, "reference")}");
                    Line($"#{n} DONE {Str(buildEvent, "digest")}");
                    break;
                }

            case "StepStarted":
                {
                    var n = _next++;
                    var id = Str(buildEvent, "stepId");
                    _steps[id] = (n, Time(buildEvent, "at"));
                    Line($"#{n} {labels.For(id, Str(buildEvent, "display"))}");
                    if (Str(buildEvent["explanation"], "summary") is { Length: > 0 } why)
                    {
                        // Why the cache did not answer it, in one line; farm explain BUILD STEP says it in full.
                        Line($"#{n} rebuilt: {why}");
                    }

                    break;
                }

            case "StepLog":
                {
                    var line = buildEvent["line"];
                    if (_steps.TryGetValue(Str(line, "stepId"), out var step))
                    {
                        var elapsed = (Time(line, "at") - step.Started).TotalSeconds;
                        Line($"#{step.Number} {elapsed.ToString("0.000", CultureInfo.InvariantCulture)} {Str(line, "line")}");
                    }

                    break;
                }

            case "StepFinished":
                {
                    var outcome = buildEvent["outcome"];
                    _done.Add(Str(outcome, "stepId"));
                    if (_steps.TryGetValue(Str(outcome, "stepId"), out var step))
                    {
                        var cached = Flag(outcome, "cached");
                        Line(cached ? $"#{step.Number} CACHED" : $"#{step.Number} DONE {Seconds(Time(outcome, "finished") - Time(outcome, "started"))}");
                    }

                    break;
                }

            case "CacheImported":
                {
                    // buildx's lines: a reference that cannot be used is a warning, and the build goes on.
                    var n = _next++;
                    Line($"#{n} importing cache manifest from {Str(buildEvent, "reference")}");
                    Line(Str(buildEvent, "warning") is { Length: > 0 } warning ? $"#{n} WARNING: {warning}" : $"#{n} DONE {(long)Num(buildEvent, "entries")} entries");
                    break;
                }

            case "CacheExported":
                {
                    var n = _next++;
                    Line($"#{n} exporting cache to registry {Str(buildEvent, "reference")}");
                    Line(Str(buildEvent, "warning") is { Length: > 0 } warning
                        ? $"#{n} WARNING: {warning}"
                        : $"#{n} writing cache manifest {Str(buildEvent, "digest")}: {(long)Num(buildEvent, "entries")} entries, {(long)Num(buildEvent, "layers")} layers");
                    Line($"#{n} DONE");
                    break;
                }

            case "BuildFinished":
                {
                    var n = _next++;
                    Line($"#{n} exporting to image");
                    Line($"#{n} writing image {Str(buildEvent, "imageDigest")}");
                    foreach (var pushed in buildEvent["pushed"]?.AsArray() ?? [])
                    {
                        Line($"#{n} pushed {(string?)pushed}");
                    }

                    Line($"#{n} DONE");
                    break;
                }

            case "ImageStored":
                {
                    var n = _next++;
                    foreach (var name in buildEvent["names"]?.AsArray() ?? [])
                    {
                        Line($"#{n} naming to {(string?)name}");
                    }

                    Line($"#{n} DONE");
                    break;
                }

            case "BuildFailed":
                foreach (var (id, step) in _steps.Where(s => !_done.Contains(s.Key)))
                {
                    Line($"#{step.Number} ERROR {labels.For(id, string.Empty).TrimEnd()}");
                }

                break;
        }

    }

    public void Complete() => output.Flush();

    public void Dispose()
    {
    }

    private void Line(string text)
    {
        output.Write(text + "\n");
        output.Flush();
    }
}
