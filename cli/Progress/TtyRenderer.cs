using System.Text;
using System.Text.Json.Nodes;
using static Farm.Cli.Progress.BuildProgress;

namespace Farm.Cli.Progress;

/// <summary>
/// <c>--progress tty</c>: a live view redrawn in place (ANSI cursor movement) ten times a second: a header with the
/// elapsed time and steps done, one line per step (running with its elapsed time, CACHED, done with its duration and
/// the worker that built it, or ERROR) and the last lines of output under each running step. When the build ends the
/// view stays as it was last drawn.
/// </summary>
/// <remarks>
/// Written by hand rather than with Spectre.Console's live display: it is a few dozen lines, and the CLI's start-up
/// time is part of every warm rebuild, so it loads no assembly it does not need.
/// </remarks>
internal sealed class TtyRenderer : IProgressRenderer
{
    private const int OutputLines = 6;
    private readonly StepLabels _labels;
    private readonly TextWriter _output;
    private readonly Lock _lock = new();
    private readonly List<Row> _rows = [];
    private readonly Dictionary<string, Row> _byStep = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private readonly Timer _timer;
    private int _height;
    private int _total;
    private bool _completed;

    public TtyRenderer(StepLabels labels, TextWriter output)
    {
        _labels = labels;
        _output = output;
        _timer = new Timer(_ => Draw(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
    }

    public void Render(JsonObject buildEvent)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        lock (_lock)
        {
            switch (Str(buildEvent, "type"))
            {
                case "ContextPacked":
                    _rows.Add(new Row($"[internal] load build context {HumanBytes((long)Num(buildEvent, "bytes"))}", DateTimeOffset.UtcNow)
                    {
                        State = "done",
                        Duration = TimeSpan.FromMilliseconds(Num(buildEvent, "durationMs")),
                    });
                    break;
                case "ContextFetched":
                    _rows.Add(new Row($"[internal] farm fetched build context {Str(buildEvent, "url")}{(Str(buildEvent, "commit") is { Length: > 0 } c ? " at " + c[..Math.Min(12, c.Length)] : string.Empty)} {HumanBytes((long)Num(buildEvent, "bytes"))}", DateTimeOffset.UtcNow)
                    {
                        State = buildEvent["cached"]?.GetValue<bool>() == true ? "cached" : "done",
                        Duration = TimeSpan.Zero,
                    });
                    break;
                case "BaseImageResolved":
                    _rows.Add(new Row($"[internal] load metadata for {Str(buildEvent, "reference")}", DateTimeOffset.UtcNow) { State = "done", Duration = TimeSpan.Zero });
                    break;
                case "BuildStarted":
                    _total = (int)Num(buildEvent, "layerSteps");
                    break;
                case "StepStarted":
                    {
                        var id = Str(buildEvent, "stepId");
                        var row = new Row(_labels.For(id, Str(buildEvent, "display")), DateTimeOffset.UtcNow);
                        _rows.Add(row);
                        _byStep[id] = row;
                        break;
                    }

                case "StepLog":
                    {
                        var line = buildEvent["line"];
                        if (_byStep.TryGetValue(Str(line, "stepId"), out var row))
                        {
                            row.Output.Enqueue(Str(line, "line"));
                            while (row.Output.Count > OutputLines)
                            {
                                row.Output.Dequeue();
                            }
                        }

                        break;
                    }

                case "StepFinished":
                    {
                        var outcome = buildEvent["outcome"];
                        if (_byStep.TryGetValue(Str(outcome, "stepId"), out var row))
                        {
                            row.State = Flag(outcome, "cached") ? "cached" : "done";
                            row.Duration = Time(outcome, "finished") - Time(outcome, "started");
                            row.Worker = Str(outcome, "worker");
                        }

                        break;
                    }

                case "CacheImported":
                    _rows.Add(new Row(
                        Str(buildEvent, "warning") is { Length: > 0 } notImported ? $"WARNING: {notImported}" : $"importing cache manifest from {Str(buildEvent, "reference")}",
                        DateTimeOffset.UtcNow) { State = "done", Duration = TimeSpan.Zero });
                    break;
                case "CacheExported":
                    _rows.Add(new Row(
                        Str(buildEvent, "warning") is { Length: > 0 } notExported ? $"WARNING: {notExported}" : $"exporting cache to {Str(buildEvent, "reference")}",
                        DateTimeOffset.UtcNow) { State = "done", Duration = TimeSpan.Zero });
                    break;
                case "BuildFinished":
                    _rows.Add(new Row($"exporting to image {Str(buildEvent, "imageDigest")}", DateTimeOffset.UtcNow) { State = "done", Duration = TimeSpan.Zero });
                    break;
                case "ImageStored":
                    foreach (var name in buildEvent["names"]?.AsArray() ?? [])
                    {
                        _rows.Add(new Row($"naming to {(string?)name}", DateTimeOffset.UtcNow) { State = "done", Duration = TimeSpan.Zero });
                    }

                    break;
                case "BuildFailed":
                    foreach (var row in _rows.Where(r => r.State == "running"))
                    {
                        row.State = "error";
                        row.Duration = DateTimeOffset.UtcNow - row.Started;
                    }

                    break;
            }
        }

        Draw();
    }

    public void Complete()
    {
        _timer.Change(Timeout.Infinite, Timeout.Infinite);
        Draw();
        lock (_lock)
        {
            _completed = true;
        }
    }

    public void Dispose() => _timer.Dispose();

    private void Draw()
    {
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            var width = Width();
            var lines = new List<string>();
            var done = _byStep.Values.Count(r => r.State != "running");
            lines.Add($"\u001b[1m[+] Building {Seconds(DateTimeOffset.UtcNow - _started)} ({done}/{Math.Max(_total, _byStep.Count)})\u001b[0m");
            foreach (var row in _rows)
            {
                var duration = Seconds(row.Duration ?? DateTimeOffset.UtcNow - row.Started);
                var (prefix, color) = row.State switch
                {
                    "cached" => (" => CACHED ", "\u001b[34m"),
                    "error" => (" => ERROR ", "\u001b[31m"),
                    "running" => (" => ", "\u001b[33m"),
                    _ => (" => ", "\u001b[34m"),
                };
                var suffix = row.State == "done" && row.Worker is { Length: > 0 } w ? $" {duration} on {w}" : $" {duration}";
                var text = Fit(prefix + row.Label, width - suffix.Length - 1);
                lines.Add(color + text + new string(' ', Math.Max(1, width - text.Length - suffix.Length)) + suffix + "\u001b[0m");
                if (row.State is "running" or "error")
                {
                    lines.AddRange(row.Output.Select(o => "\u001b[2m => => " + Fit(o, width - 8) + "\u001b[0m"));
                }
            }

            var frame = new StringBuilder();
            if (_height > 0)
            {
                frame.Append("\u001b[").Append(_height).Append('A');
            }

            foreach (var line in lines)
            {
                frame.Append('\r').Append("\u001b[2K").Append(line).Append('\n');
            }

            frame.Append("\u001b[J");
            _output.Write(frame.ToString());
            _output.Flush();
            _height = lines.Count;
        }
    }

    private static string Fit(string text, int width)
    {
        text = text.ReplaceLineEndings(" ").Replace('\t', ' ');
        return width <= 1 ? string.Empty : text.Length <= width ? text : text[..(width - 1)] + "…";
    }

    private static int Width()
    {
        try
        {
            return Console.WindowWidth is > 20 and var w ? w : 100;
        }
        catch (IOException)
        {
            return 100;
        }
    }

    private sealed class Row(string label, DateTimeOffset started)
    {
        public string Label { get; } = label;

        public DateTimeOffset Started { get; } = started;

        public string State { get; set; } = "running";

        public TimeSpan? Duration { get; set; }

        public string? Worker { get; set; }

        public Queue<string> Output { get; } = new();
    }
}
