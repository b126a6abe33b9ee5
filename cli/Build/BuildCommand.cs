using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Farm.Cli.Progress;
using Farm.Cli.Remote;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Dockerfile.Graph;
using Farm.Oci.Images;

namespace Farm.Cli.Build;

/// <summary>
/// <c>farm build [flags] CONTEXT</c>: builds on the embedded farm (no <c>--farm</c>, no <c>FARM_HOST</c>) or on a
/// remote coordinator, showing progress per <c>--progress</c>. Built images go into the local image store (embedded)
/// and to their registries with <c>--push</c>. Errors end with one <c>farm: FARMxxxx: ...</c> line and exit code 1.
/// </summary>
internal static class BuildCommand
{
    public static Command Create()
    {
        var options = new BuildOptions();
        var command = new Command("build", "Build an image from a Dockerfile and a context directory.");
        options.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            parse,
            async () => await BuildAsync(options.Read(parse), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken).ConfigureAwait(false)));
        return command;
    }

    /// <summary>Runs a command body; a failure becomes one line on stderr and an exit code (<see cref="CliErrors"/>).</summary>
    public static Task<int> RunAsync(ParseResult parse, Func<Task<int>> body)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return CliErrors.RunAsync(parse.InvocationConfiguration.Error, body);
    }

    public static async Task<int> BuildAsync(BuildSettings settings, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        BuildTimings.Mark("start");
        var text = ReadDockerfile(settings.DockerfilePath);

        // Parsed here, beside the packing of the context (the two take most of a warm rebuild's start-up): a bad
        // Dockerfile still fails with its file:line:col before anything is built, and stops the packing.
        var graph = Task.Run(() => BuildGraph.Create(text, settings.DockerfilePath, new BuildGraphOptions { BuildArgs = settings.BuildArgs, Target = settings.Target, Platform = settings.Platform }), cancellationToken);
        var mode = BuildProgress.ParseMode(settings.Progress);
        var status = mode == ProgressMode.RawJson ? null : error;
        using var trace = BuildTrace.Start("farm build", settings.FarmUrl is null ? "embedded" : "remote", settings, status);
        using var renderer = trace.Observe(BuildProgress.Create(mode, new StepLabels(() => graph.Result), output, error));
        try
        {
            if (settings.FarmUrl is { } url)
            {
                await graph.ConfigureAwait(false);
                return await RemoteFarm.BuildAsync(url, settings, text, renderer, status, cancellationToken).ConfigureAwait(false);
            }

            return await BuildEmbeddedAsync(settings, text, graph, renderer, status, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (trace.Failed(e))
        {
            throw;
        }
    }

    /// <exception cref="DockerfileUnreadableException">The file is missing, unreadable or not UTF-8 (FARM5012).</exception>
    public static string ReadDockerfile(string path)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw new DockerfileUnreadableException(path, e.Message, e);
        }
    }

    /// <summary>Renders events from any thread on one consumer, in the order they were reported.</summary>
    public static (IProgress<JsonObject> Sink, Task Drained, Action Complete) Pump(IProgressRenderer renderer)
    {
        ArgumentNullException.ThrowIfNull(renderer);
        var channel = Channel.CreateUnbounded<JsonObject>(new UnboundedChannelOptions { SingleReader = true });
        var drained = Task.Run(async () =>
        {
            await foreach (var item in channel.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                renderer.Render(item);
            }
        });
        return (new Progress(channel.Writer), drained, () => channel.Writer.TryComplete());
    }

    private static async Task<int> BuildEmbeddedAsync(BuildSettings settings, string dockerfile, Task<BuildGraph> graph, IProgressRenderer renderer, TextWriter? status, CancellationToken cancellationToken)
    {
        var stateDirectory = LocalImageStore.DefaultStateDirectory();
        using var store = await LocalImageStore.OpenAsync(stateDirectory, cancellationToken).ConfigureAwait(false);
        var (sink, drained, complete) = Pump(renderer);
        try
        {
            PackedContext context;
            using (var packing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                _ = graph.ContinueWith(_ => CancelQuietly(packing), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                try
                {
                    context = await PackedContext.PackAsync(settings.ContextDirectory, settings.DockerfilePath, Path.Combine(stateDirectory, "tmp"), status, packing.Token, ContextStatCache.In(stateDirectory), store.Layout.StatAsync).ConfigureAwait(false);
                    BuildTimings.Mark("packed");
                }
                catch (OperationCanceledException) when (graph.IsFaulted)
                {
                    // The Dockerfile's error, not the packing's cancellation.
                    await graph.ConfigureAwait(false);
                    throw;
                }
            }

            await using (context.ConfigureAwait(false))
            {
                await graph.ConfigureAwait(false);
                BuildTimings.Mark("parsed");
                // Stored only when the store lacks it: an unchanged context costs a stat.
                var newContext = await store.Layout.StatAsync(context.Tar.Digest, cancellationToken).ConfigureAwait(false) is null;
                if (newContext)
                {
                    var tar = context.OpenTar();
                    await using (tar.ConfigureAwait(false))
                    {
                        await store.Layout.PutAsync(context.Tar, tar, cancellationToken).ConfigureAwait(false);
                    }
                }

                sink.Report(context.PackedEvent);
                await using var farm = new EmbeddedFarm(stateDirectory, store, new LocalBaseImages(store, settings.Pull, onPull: null));
                if (newContext || settings.NoCache)
                {
                    farm.Prestart();
                }

                var submit = settings.ToSubmit(dockerfile, context.Tar.Digest.ToString(), context.IndexDescriptor.Digest.ToString());
                var request = BuildRequest.From(submit, context.Index, farm.CacheStore) with { Output = settings.Output };
                BuildTimings.Mark("planned");
                var result = await farm.RunAsync(request, new EventProgress(sink), cancellationToken).ConfigureAwait(false);
                BuildTimings.Mark("built");
                var image = result.Image;
                var stored = await store.AddAsync(image.ConfigBytes, image.ConfigDescriptor.MediaType, image.ManifestBytes, image.ManifestDescriptor.MediaType, settings.Tags, cancellationToken).ConfigureAwait(false);
                sink.Report(BuildProgress.Typed("ImageStored", new JsonObject
                {
                    ["id"] = stored.Id.ToString(),
                    ["digest"] = stored.ManifestDescriptor.Digest.ToString(),
                    ["names"] = new JsonArray([.. settings.Tags.Select(t => (JsonNode?)LocalImageStore.NormalizeName(t))]),
                }));
                BuildTimings.Mark("stored");
                return 0;
            }
        }
        finally
        {
            complete();
            await drained.ConfigureAwait(false);
            renderer.Complete();
        }
    }

    private static void CancelQuietly(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The packing had ended already: nothing to stop.
        }
    }

    private sealed class Progress(ChannelWriter<JsonObject> writer) : IProgress<JsonObject>
    {
        public void Report(JsonObject value) => writer.TryWrite(value);
    }

    /// <summary>The orchestrator's events as the API's JSON.</summary>
    private sealed class EventProgress(IProgress<JsonObject> sink) : IProgress<BuildEvent>
    {
        public void Report(BuildEvent value) => sink.Report(BuildProgress.ToJson(value));
    }
}
