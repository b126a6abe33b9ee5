using System.CommandLine;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Farm.Cli.Progress;
using Farm.Cli.Remote;
using Farm.Contracts;
using Farm.Cli.Local;
using Farm.Oci.Images;
using Farm.Oci.Registry;
using Farm.Dockerfile.Graph;

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
        command.Options.Add(options.DryRun);
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
        // A URL context given to a remote farm is fetched by the farm; the local farm's client fetches it here, as
        // before (it is this machine either way), and so does a dry run.
        var farmContext = settings.FarmUrl is not null && !settings.DryRun
            ? await BuildContextSource.ForFarmAsync(settings, Console.OpenStandardInput, cancellationToken).ConfigureAwait(false)
            : null;
        using var source = farmContext is null ? await BuildContextSource.ResolveAsync(settings, Console.OpenStandardInput, cancellationToken).ConfigureAwait(false) : null;
        settings = await OciLayoutContexts.LoadAsync(source?.Settings ?? settings with { DockerfilePath = farmContext!.DockerfilePath }, cancellationToken).ConfigureAwait(false);
        var text = source?.Dockerfile ?? farmContext!.Dockerfile;

        // Parsed here, beside the packing of the context (the two take most of a warm rebuild's start-up): a bad
        // Dockerfile still fails with its file:line:col before anything is built, and stops the packing. The farm
        // parses a Dockerfile it reads from a URL context itself.
        var graph = text.Length == 0 ? Task.FromResult<BuildGraph>(null!) : Task.Run(() => BuildGraph.Create(text, settings.DockerfilePath, settings.GraphOptions()), cancellationToken);
        var mode = BuildProgress.ParseMode(settings.Progress);
        var status = mode == ProgressMode.RawJson || settings.Quiet ? null : error;
        using var trace = BuildTrace.Start("farm build", settings.FarmUrl is null ? "local" : "remote", settings, status);
        var renderer = trace.Observe(settings.Quiet ? new SilentRenderer() : BuildProgress.Create(mode, new StepLabels(() => graph.Result), output, error));
        // Disposes the renderer it wraps.
        using var results = new BuildResultFiles(renderer);
        try
        {
            if (settings.DryRun)
            {
                return await DryRunAsync(settings, text, graph, renderer, output, status, mode, cancellationToken).ConfigureAwait(false);
            }

            int exit;
            if (settings.FarmUrl is { } url)
            {
                await graph.ConfigureAwait(false);
                exit = await RemoteFarm.BuildAsync(url, settings, text, results, status, cancellationToken, farmContext?.Context).ConfigureAwait(false);
            }
            else
            {
                exit = await BuildLocalAsync(settings, text, graph, results, status, cancellationToken).ConfigureAwait(false);
            }

            if (exit == 0)
            {
                results.Write(settings, output);
            }

            return exit;
        }
        catch (Exception e) when (trace.Failed(e))
        {
            throw;
        }
    }

    /// <summary>The full path of a directory named context.</summary>
    /// <exception cref="NamedContextException">It is not a directory (FARM1221).</exception>
    public static string NamedDirectory(NamedContextSpec context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var full = Path.GetFullPath(context.Value);
        return Directory.Exists(full) ? full : throw new NamedContextException(context.Name, $"{context.Value} is not a directory");
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

    /// <summary>
    /// On the local farm daemon (started when none answers): it reads the context directory in place, keeps its stat
    /// cache, builds, exports <c>--output</c> and names the image in the local store; this process only submits and
    /// renders the events, and cancels the build on Ctrl-C.
    /// </summary>
    private static async Task<int> BuildLocalAsync(BuildSettings settings, string dockerfile, Task<BuildGraph> graph, IProgressRenderer renderer, TextWriter? status, CancellationToken cancellationToken)
    {
        var daemon = new LocalDaemon();
        using var farm = await daemon.ConnectAsync(status, cancellationToken).ConfigureAwait(false);
        BuildTimings.Mark("connected");
        await graph.ConfigureAwait(false);
        var submit = settings.ToSubmit(dockerfile, string.Empty, string.Empty) with
        {
            ContextIndexDigest = null,
            ContextDirectory = Path.GetFullPath(settings.ContextDirectory),
            DockerfileLocation = Path.GetFullPath(settings.DockerfilePath),
            Output = settings.Output?.Format(),
        };
        if (settings.NamedContexts.Any(c => c.Kind == NamedContextKind.Directory))
        {
            // The daemon reads named directories in place, as it reads the context.
            submit = submit with
            {
                Options = (submit.Options ?? new SubmitBuildOptions()) with
                {
                    NamedContexts = [.. submit.Options?.NamedContexts ?? [], .. settings.NamedContexts.Where(c => c.Kind == NamedContextKind.Directory).Select(c => new NamedContext { Name = c.Name, Directory = NamedDirectory(c) })],
                },
            };
        }
        // The daemon names the image; the push is this client's, with this user's credentials (docker's login), as
        // docker pushes with the client's and not the daemon's. An image index is not in the local store (it names one
        // image per name): the daemon, running as this user, pushes it itself.
        var multi = settings.Platforms.Count > 1;
        var exit = await farm.RunAsync(submit with { Push = multi && settings.Push }, settings.Secrets, renderer, cancellationToken).ConfigureAwait(false);
        BuildTimings.Mark("built");
        if (exit == 0 && settings.Push && multi)
        {
            foreach (var tag in settings.Tags)
            {
                status?.Write($"farm: pushed {LocalImageStore.NormalizeName(tag)} (an index of {string.Join(", ", settings.Platforms)})\n");
            }
        }
        else if (exit == 0 && settings.Push)
        {
            using var store = await LocalImageStore.OpenAsync(daemon.StateDirectory, cancellationToken).ConfigureAwait(false);
            foreach (var tag in settings.Tags)
            {
                await store.PushAsync(tag, DockerConfig.Default(), CliRegistryOptions.FromEnvironment(), null, cancellationToken).ConfigureAwait(false);
                status?.Write($"farm: pushed {LocalImageStore.NormalizeName(tag)}\n");
            }
        }

        return exit;
    }

    /// <summary>
    /// <c>--dry-run</c>: the farm plans the build, keys its steps and asks its cache (<c>POST /builds/plan</c>); this
    /// prints each layer step as cached or as what would run and why, on standard output (rawjson: the farm's answer as
    /// one JSON object). Nothing is built, pushed, exported or named; the context is packed (and uploaded to a remote
    /// farm's cache store) as for a build, since the keys are made from it.
    /// </summary>
    private static async Task<int> DryRunAsync(BuildSettings settings, string dockerfile, Task<BuildGraph> graph, IProgressRenderer renderer, TextWriter output, TextWriter? status, ProgressMode mode, CancellationToken cancellationToken)
    {
        JsonNode? report;
        if (settings.FarmUrl is { } url)
        {
            await graph.ConfigureAwait(false);
            using var remote = new RemoteFarm(url) { Notices = status ?? Console.Error };
            var store = await remote.CacheStoreAsync(cancellationToken).ConfigureAwait(false);
            var uploaded = await RemoteFarm.UploadAsync(settings, dockerfile, store, renderer, status, cancellationToken).ConfigureAwait(false);
            report = await remote.PlanAsync(uploaded with { Push = false }, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var daemon = new LocalDaemon();
            using var farm = await daemon.ConnectAsync(status, cancellationToken).ConfigureAwait(false);
            await graph.ConfigureAwait(false);
            var submit = settings.ToSubmit(dockerfile, string.Empty, string.Empty) with
            {
                ContextIndexDigest = null,
                ContextDirectory = Path.GetFullPath(settings.ContextDirectory),
                DockerfileLocation = Path.GetFullPath(settings.DockerfilePath),
                Push = false,
            };
            report = await farm.PlanAsync(submit, cancellationToken).ConfigureAwait(false);
        }

        renderer.Complete();
        if (mode == ProgressMode.RawJson)
        {
            output.Write((report?.ToJsonString(BuildProgress.Json) ?? "{}") + "\n");
            output.Flush();
            return 0;
        }

        var labels = new StepLabels(graph.Result);
        var steps = report?["steps"]?.AsArray().OfType<JsonObject>().ToList() ?? [];
        var n = 0;
        foreach (var step in steps)
        {
            n++;
            output.Write($"#{n} {labels.For(BuildProgress.Str(step, "stepId"), BuildProgress.Str(step, "display"))}\n");
            output.Write(BuildProgress.Flag(step, "cached")
                ? $"#{n} CACHED\n"
                : $"#{n} would run: {(BuildProgress.Str(step["explanation"], "summary") is { Length: > 0 } why ? why : "not in the cache")}\n");
        }

        var run = steps.Count(s => !BuildProgress.Flag(s, "cached"));
        var previous = BuildProgress.Str(report, "previousBuild");
        output.Write($"dry run: {run} of {steps.Count} layer steps would run{(previous.Length > 0 ? $" (compared with build {previous})" : string.Empty)}; nothing was built, pushed or named\n");
        output.Flush();
        return 0;
    }

    private sealed class Progress(ChannelWriter<JsonObject> writer) : IProgress<JsonObject>
    {
        public void Report(JsonObject value) => writer.TryWrite(value);
    }
}
