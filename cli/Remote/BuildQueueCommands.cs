using System.CommandLine;
using Farm.Cli.Build;
using Farm.Cli.Local;
using Farm.Cli.Progress;
using Farm.Contracts;
using Farm.Dockerfile.Graph;

namespace Farm.Cli.Remote;

/// <summary>
/// <c>farm submit</c> (publish a <see cref="SubmitBuild"/> to RabbitMQ), <c>farm status ID</c> and <c>farm logs ID</c>
/// (against the coordinator's HTTP API named by <c>--farm</c> or <c>FARM_HOST</c>).
/// </summary>
internal static class BuildQueueCommands
{
    private const string DefaultFarm = "http://127.0.0.1:8480";
    private const string DefaultCacheStore = "registry://127.0.0.1:5100/farm/cache";

    public static IEnumerable<Command> All()
    {
        yield return Submit();
        yield return Status();
        yield return Logs();
    }

    /// <summary>
    /// <c>farm logs ID</c> for a build: its steps' output (<c>[stepId] line</c>) from the farm. A build id is a
    /// GUID; any other argument of <c>farm logs</c> names a container (<see cref="ContainerCommands.LogsAsync"/>).
    /// </summary>
    /// <remarks>
    /// From <paramref name="farmUrl"/>, else <c>FARM_HOST</c>, else the local farm daemon when it runs (the builds
    /// <c>farm build</c> ran there), else <c>http://127.0.0.1:8480</c>. With <paramref name="since"/> only the lines
    /// from then on; with <paramref name="timestamps"/> each after its time.
    /// </remarks>
    public static async Task<int> BuildLogsAsync(Guid id, string? farmUrl, bool follow, int? tail, DateTimeOffset? since, bool timestamps, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        // Standard error says when a follow goes on on another coordinator; standard output holds only the lines.
        var url = farmUrl is { Length: > 0 } ? farmUrl : Environment.GetEnvironmentVariable("FARM_HOST") is { Length: > 0 } host ? host : null;
        var daemon = new LocalDaemon().Socket;
        using var farm = url is null && File.Exists(daemon) ? RemoteFarm.OverSocket(daemon) : new RemoteFarm(url ?? DefaultFarm) { Notices = error };
        await farm.LogsAsync(id, follow, tail, since, timestamps, output, cancellationToken).ConfigureAwait(false);
        return 0;
    }

    private static Command Submit()
    {
        var options = new BuildOptions();
        var wait = new Option<bool>("--wait") { Description = "Follow the build to its end (needs --farm / FARM_HOST, default http://127.0.0.1:8480)." };
        var cacheStore = new Option<string>("--cache-store") { Description = $"Where the coordinator reads contexts (default: GET /store of --farm / FARM_HOST, else $FARM_CACHE_STORE, else {DefaultCacheStore})." };
        var command = new Command("submit", "Publish a build to the farm's queue on RabbitMQ ($FARM_RABBITMQ) and print its id.") { wait, cacheStore };
        options.AddTo(command);
        command.SetAction((parse, ct) => BuildCommand.RunAsync(parse, async () =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            // A URL context is the farm's to fetch: the client may not reach it at all (docs/architecture.md, "A build, step by step", 1).
            var read = options.Read(parse);
            var farmContext = await BuildContextSource.ForFarmAsync(read, Console.OpenStandardInput, ct).ConfigureAwait(false);
            using var source = farmContext is null ? await BuildContextSource.ResolveAsync(read, Console.OpenStandardInput, ct).ConfigureAwait(false) : null;
            var settings = source?.Settings ?? read with { DockerfilePath = farmContext!.DockerfilePath };
            var text = source?.Dockerfile ?? farmContext!.Dockerfile;
            var graph = text.Length == 0 ? null : BuildGraph.Create(text, settings.DockerfilePath, settings.GraphOptions());
            if (settings.Secrets is not null)
            {
                // RabbitMQ keeps messages on disk: a secret in one would be stored.
                throw new SecretsRefusedException("--secret and --ssh cannot go through the queue (RabbitMQ stores its messages); build with farm build --farm https://... instead, which passes them to the coordinator's memory only");
            }

            if (settings.Output is not null)
            {
                throw new InvalidCliArgumentException("--output needs the embedded farm (farm build without --farm); a submitted build can --push");
            }

            var following = parse.GetValue(wait);
            var mode = BuildProgress.ParseMode(settings.Progress);
            using var trace = BuildTrace.Start("farm submit", "queue", settings, mode == ProgressMode.RawJson ? null : error);
            using var renderer = trace.Observe(following ? BuildProgress.Create(mode, new StepLabels(graph), output, error) : new RawJsonRenderer(TextWriter.Null));
            var store = parse.GetValue(cacheStore) is { Length: > 0 } s ? s
                : settings.FarmUrl is { } url ? await StoreOfAsync(url, ct).ConfigureAwait(false)
                : Environment.GetEnvironmentVariable("FARM_CACHE_STORE") is { Length: > 0 } e ? e
                : DefaultCacheStore;
            var submit = await RemoteFarm.UploadAsync(settings, text, store, renderer, mode == ProgressMode.RawJson ? null : error, ct, farmContext?.Context).ConfigureAwait(false);
            await QueuePublisher.PublishAsync(submit, ct).ConfigureAwait(false);
            if (!following)
            {
                output.WriteLine(submit.BuildId);
                return 0;
            }

            if (mode != ProgressMode.RawJson)
            {
                error.WriteLine($"farm: submitted build {submit.BuildId}");
            }

            using var farm = new RemoteFarm(FarmUrl(settings.FarmUrl)) { Notices = error };
            // The coordinator learns of the build when it consumes the message: wait for it to appear.
            var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                try
                {
                    return await farm.FollowAsync(submit.BuildId, renderer, ct).ConfigureAwait(false);
                }
                catch (NoSuchBuildException) when (DateTimeOffset.UtcNow < deadline)
                {
                    await Task.Delay(200, ct).ConfigureAwait(false);
                }
            }
        }));
        return command;
    }

    private static Command Status()
    {
        var id = new Argument<string>("ID") { Description = "The build id (farm submit prints it)." };
        var farmUrl = new Option<string>("--farm") { Description = "The coordinator's HTTP address (default: $FARM_HOST, else http://127.0.0.1:8480)." };
        var command = new Command("status", "Show a build's status, image digest, error and steps as JSON.") { id, farmUrl };
        command.SetAction((parse, ct) => BuildCommand.RunAsync(parse, async () =>
        {
            var value = parse.GetValue(id)!;
            var build = Guid.TryParse(value, out var g) ? g : throw new NoSuchBuildException(value, "any farm (build ids are GUIDs)");
            using var farm = new RemoteFarm(FarmUrl(parse.GetValue(farmUrl)));
            parse.InvocationConfiguration.Output.WriteLine(await farm.StatusAsync(build, ct).ConfigureAwait(false));
            return 0;
        }));
        return command;
    }

    private static Command Logs()
    {
        var target = new Argument<string>("ID") { Description = "A build id (a GUID), or a container's name or id." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing until the build or the container ends." };
        var farmUrl = new Option<string>("--farm") { Description = "The coordinator's HTTP address (default: $FARM_HOST, else the local farm daemon when it runs, else http://127.0.0.1:8480)." };
        var tailOption = new Option<string>("--tail", "-n") { Description = "Only the last N lines of the build's or the container's output so far (\"all\" for every line).", DefaultValueFactory = _ => "all" };
        var sinceOption = new Option<string>("--since") { Description = "Only the build's or the container's lines from this time on: a duration back (10m, 1h30m), an RFC 3339 time, a date or a Unix timestamp." };
        var timestampsOption = new Option<bool>("--timestamps", "-t") { Description = "Print each line of the build's or the container's output after its time (RFC 3339, UTC, nanoseconds)." };
        var command = new Command("logs", "Print the output of a build's steps, or of a container.") { target, follow, farmUrl, tailOption, sinceOption, timestampsOption };
        command.SetAction((parse, ct) => BuildCommand.RunAsync(parse, async () =>
        {
            var value = parse.GetValue(target)!;
            var tailText = parse.GetValue(tailOption)!;
            int? tail = tailText == "all" ? null
                : int.TryParse(tailText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n
                : throw new InvalidCliArgumentException($"--tail takes a number of lines or all, not '{tailText}'");
            var since = parse.GetValue(sinceOption) is { Length: > 0 } sinceText ? LogSince.Parse(sinceText, DateTimeOffset.Now) : (DateTimeOffset?)null;
            var timestamps = parse.GetValue(timestampsOption);
            if (Guid.TryParse(value, out var build))
            {
                return await BuildLogsAsync(build, parse.GetValue(farmUrl), parse.GetValue(follow), tail, since, timestamps, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct).ConfigureAwait(false);
            }

            // Anything else names a local container (farm run -d).
            return await ContainerCommands.LogsAsync(value, parse.GetValue(follow), tail, since, timestamps, ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static string FarmUrl(string? given) =>
        given is { Length: > 0 } ? given : Environment.GetEnvironmentVariable("FARM_HOST") is { Length: > 0 } host ? host : DefaultFarm;

    private static async Task<string> StoreOfAsync(string url, CancellationToken cancellationToken)
    {
        using var farm = new RemoteFarm(url);
        return await farm.CacheStoreAsync(cancellationToken).ConfigureAwait(false);
    }
}
