using System.Text.Json.Nodes;
using Farm.Cli.Progress;

namespace Farm.Cli.Build;

/// <summary>
/// What a finished build tells its user beyond the progress, as docker buildx: <c>--iidfile</c> (the image id, the
/// digest of its config), <c>--metadata-file</c> (<c>containerimage.digest</c>, <c>containerimage.config.digest</c>,
/// <c>image.name</c>) and <c>-q</c> (the image id alone on standard output). It watches the events as they are
/// rendered: the local farm's <c>ImageStored</c> and any farm's <c>BuildFinished</c> carry the digests.
/// </summary>
internal sealed class BuildResultFiles(IProgressRenderer inner) : IProgressRenderer
{
    private string _manifest = string.Empty;
    private string _config = string.Empty;

    public void Render(JsonObject buildEvent)
    {
        switch (BuildProgress.Str(buildEvent, "type"))
        {
            case "ImageStored":
                _config = BuildProgress.Str(buildEvent, "id");
                _manifest = BuildProgress.Str(buildEvent, "digest");
                break;
            case "BuildFinished":
                _manifest = _manifest.Length > 0 ? _manifest : BuildProgress.Str(buildEvent, "imageDigest");
                _config = _config.Length > 0 ? _config : BuildProgress.Str(buildEvent, "imageId");
                break;
        }

        inner.Render(buildEvent);
    }

    public void Complete() => inner.Complete();

    public void Dispose() => inner.Dispose();

    /// <summary>Writes the files <paramref name="settings"/> asks for and, with <c>-q</c>, the id to <paramref name="output"/>.</summary>
    /// <exception cref="RemoteFarmException">The farm did not say the image's id (an older coordinator) and a file needs it (FARM5013).</exception>
    public void Write(BuildSettings settings, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        if (settings.IidFile is null && settings.MetadataFile is null && !settings.Quiet)
        {
            return;
        }

        if (_config.Length == 0)
        {
            throw new RemoteFarmException(settings.FarmUrl ?? "the local farm daemon", "did not report the image's id (a coordinator older than this farm command)");
        }

        if (settings.IidFile is { } iid)
        {
            // docker writes the id without a line end.
            File.WriteAllText(iid, _config);
        }

        if (settings.MetadataFile is { } metadata)
        {
            var json = new JsonObject
            {
                ["containerimage.config.digest"] = _config,
                ["containerimage.digest"] = _manifest,
            };
            if (settings.Tags.Count > 0)
            {
                json["image.name"] = string.Join(',', settings.Tags);
            }

            File.WriteAllText(metadata, json.ToJsonString(new System.Text.Json.JsonSerializerOptions(BuildProgress.Json) { WriteIndented = true }) + "\n");
        }

        if (settings.Quiet)
        {
            output.Write(_config + "\n");
            output.Flush();
        }
    }
}

/// <summary>The renderer of <c>-q</c>: shows nothing.</summary>
internal sealed class SilentRenderer : IProgressRenderer
{
    public void Render(JsonObject buildEvent)
    {
    }

    public void Complete()
    {
    }

    public void Dispose()
    {
    }
}
