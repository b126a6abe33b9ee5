using System.Text.Json.Nodes;

namespace Farm.Cli.Progress;

/// <summary><c>--progress rawjson</c>: one JSON object per event on standard output, flushed at once, for scripts.</summary>
internal sealed class RawJsonRenderer(TextWriter output) : IProgressRenderer
{
    public void Render(JsonObject buildEvent)
    {
        ArgumentNullException.ThrowIfNull(buildEvent);
        output.Write(buildEvent.ToJsonString(BuildProgress.Json) + "\n");
        output.Flush();
    }

    public void Complete() => output.Flush();

    public void Dispose()
    {
    }
}
