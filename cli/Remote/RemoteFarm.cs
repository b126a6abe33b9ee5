using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Cli.Build;
using Farm.Cli.Progress;
using Farm.Contracts;
using Farm.Dockerfile.Context;
using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Telemetry;

namespace Farm.Cli.Remote;

/// <summary>
/// A coordinator's HTTP API (coordinator/Api) as the CLI uses it: where to upload a context (<c>GET /store</c>),
/// submit (<c>POST /builds</c>), follow (<c>GET /builds/{id}/events?follow=true</c>), status and logs. The address
/// may list several coordinators of one farm, comma-separated: a request that cannot connect goes to the next, and a
/// follow that loses its coordinator goes on from the last event it saw on the next one that answers.
/// </summary>
internal sealed class RemoteFarm : IDisposable
{
    /// <summary>How long a follow keeps trying to reach a coordinator after it lost one, before it gives up (FARM5020).</summary>
    internal static readonly TimeSpan ReconnectWindow = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(2);

    private readonly HttpClient _http;
    private readonly string[] _urls;
    private readonly Uri[] _bases;
    private int _current;

    public RemoteFarm(string url)
    {
        _urls = [.. url.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(u => u.TrimEnd('/'))];
        if (_urls.Length == 0 || _urls.Any(u => !Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            throw new InvalidCliArgumentException($"--farm / FARM_HOST '{url}' is not an http:// or https:// address or a comma-separated list of them, e.g. http://127.0.0.1:8480,http://127.0.0.1:8481");
        }

        _bases = [.. _urls.Select(u => new Uri(u + "/"))];
        _http = new HttpClient(FarmCredentials.Handler()) { Timeout = Timeout.InfiniteTimeSpan };
        FarmCredentials.Authorize(_http);
    }

    private RemoteFarm(string socket, HttpMessageHandler handler)
    {
        _urls = ["unix://" + socket];
        _bases = [new Uri("http://farm/")];
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The API of the local farm daemon on its unix socket.</summary>
    public static RemoteFarm OverSocket(string socket) => new(socket, new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(5),
        ConnectCallback = async (_, cancellationToken) =>
        {
            var connection = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            try
            {
                await connection.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket), cancellationToken).ConfigureAwait(false);
                return new System.Net.Sockets.NetworkStream(connection, ownsSocket: true);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        },
    });

    /// <summary>The coordinator asked now.</summary>
    public string Url => _urls[_current];

    /// <summary>Where a follow says that it lost its coordinator and goes on elsewhere (standard error); null: silent.</summary>
    public TextWriter? Notices { get; init; }

    /// <summary>
    /// Follows build <paramref name="id"/> (see <see cref="FollowAsync"/>); when <paramref name="cancellationToken"/>
    /// fires (Ctrl-C) the build is cancelled on the farm before this returns, so no job of it goes on running.
    /// </summary>
    public async Task<int> FollowOrCancelAsync(Guid id, IProgressRenderer renderer, CancellationToken cancellationToken)
    {
        try
        {
            return await FollowAsync(id, renderer, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            using var response = await SendAsync($"builds/{id}/cancel", uri => _http.PostAsync(uri, null, timeout.Token)).ConfigureAwait(false);
            await EnsureAsync(response, id, timeout.Token).ConfigureAwait(false);
            await UntilEndedAsync(id, timeout.Token).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Waits until the farm records build <paramref name="id"/> as ended (a cancel is accepted at once and takes effect
    /// as its steps stop), so a cancelled command returns only once nothing of its build runs.
    /// </summary>
    private async Task UntilEndedAsync(Guid id, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (BuildProgress.Str(await GetJsonAsync($"builds/{id}", cancellationToken).ConfigureAwait(false), "status") is "queued" or "running")
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(500).Ticks));
        }
    }

    /// <summary>Submits and follows a build; Ctrl-C cancels it on the farm.</summary>
    public Task<int> RunAsync(SubmitBuild submit, IProgressRenderer renderer, CancellationToken cancellationToken) =>
        RunAsync(submit, null, renderer, cancellationToken);

    /// <summary>Submits a build with its secrets and SSH agents (in the <see cref="BuildSecretsHeader"/>), then follows it.</summary>
    public async Task<int> RunAsync(SubmitBuild submit, BuildSecretValues? secrets, IProgressRenderer renderer, CancellationToken cancellationToken)
    {
        var id = await SubmitAsync(submit, null, secrets, cancellationToken).ConfigureAwait(false);
        return await FollowOrCancelAsync(id, renderer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>GET /version</c> of the local farm daemon.</summary>
    public async Task<JsonNode?> VersionAsync(CancellationToken cancellationToken) =>
        await GetJsonAsync("version", cancellationToken).ConfigureAwait(false);

    /// <summary><c>GET /system/df</c>: the images and build cache the farm holds.</summary>
    public async Task<JsonNode?> DiskUsageAsync(CancellationToken cancellationToken) =>
        await GetJsonAsync("system/df", cancellationToken).ConfigureAwait(false);

    /// <summary><c>POST /system/prune</c> with <paramref name="request"/> (<c>untilSeconds</c>, <c>keepStorage</c>): what was removed.</summary>
    public async Task<JsonNode?> PruneAsync(JsonObject request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var response = await SendAsync("system/prune", async uri =>
        {
            using var content = new StringContent(request.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
            return await _http.PostAsync(uri, content, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        return await ReadAsync(response, "POST /system/prune", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asks the local farm daemon to stop.</summary>
    public async Task StopDaemonAsync(CancellationToken cancellationToken)
    {
        using var response = await SendAsync("daemon/stop", uri => _http.PostAsync(uri, null, cancellationToken)).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            await ReadAsync(response, "POST /daemon/stop", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Packs and uploads the context, submits, and renders the build's events until it ends; 0 when it succeeded.</summary>
    public static async Task<int> BuildAsync(string url, BuildSettings settings, string dockerfile, IProgressRenderer renderer, TextWriter? status, CancellationToken cancellationToken, UrlContext? urlContext = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(renderer);
        if (settings.Output is not null)
        {
            throw new InvalidCliArgumentException("--output needs the embedded farm (the coordinator writes no files for a client); push the image with --push instead, or build without --farm / FARM_HOST");
        }

        // The reconnection notice goes to standard error even with rawjson progress: standard output holds the events.
        using var farm = new RemoteFarm(url) { Notices = status ?? Console.Error };
        farm.CheckSecrets(settings.Secrets);
        var store = await farm.CacheStoreAsync(cancellationToken).ConfigureAwait(false);
        var submit = await UploadAsync(settings, dockerfile, store, renderer, status, cancellationToken, urlContext).ConfigureAwait(false);
        var credentials = await farm.PushCredentialsAsync(submit, cancellationToken).ConfigureAwait(false);
        var id = await farm.SubmitAsync(submit, credentials, settings.Secrets, cancellationToken).ConfigureAwait(false);
        return await farm.FollowOrCancelAsync(id, renderer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The user's credentials (<c>farm login</c>, <c>docker login</c>: the Docker config) for the registries the build
    /// pushes to, and for no other, to pass with the submission as docker passes them to BuildKit: the farm pushes as
    /// the user. Only to a coordinator reached over HTTPS or on loopback: over plain HTTP beyond it they would cross the
    /// network readable, so none are passed and a notice says so (the tenant's credentials on the farm apply then).
    /// </summary>
    internal async Task<IReadOnlyDictionary<string, RegistryCredential>?> PushCredentialsAsync(SubmitBuild submit, CancellationToken cancellationToken)
    {
        // The push targets' registries and those of --cache-to and --cache-from, which the build also writes or reads
        // for this user; never another.
        var registries = (submit.Push ? submit.Tags.Select(t => ImageReference.TryParse(t, out var r) ? r.Registry : null) : [])
            .Concat(CacheRegistries(submit))
            .OfType<string>()
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();
        if (registries.Count == 0 || Environment.GetEnvironmentVariable("FARM_PUSH_CREDENTIALS") is "0" or "false")
        {
            return null;
        }

        var config = DockerConfig.Default();
        var found = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        foreach (var registry in registries)
        {
            if (await config.GetCredentialAsync(registry, cancellationToken).ConfigureAwait(false) is { } credential)
            {
                found[registry] = credential;
            }
        }

        if (found.Count == 0)
        {
            return null;
        }

        if (_bases.Any(b => b.Scheme != Uri.UriSchemeHttps && !b.IsLoopback))
        {
            Notices?.WriteLine($"farm: not passing your credentials for {string.Join(", ", found.Keys)} to {string.Join(",", _urls)}: plain HTTP beyond loopback would carry them readable. Use an https:// address, or have the farm's operator configure your tenant's registry credentials.");
            return null;
        }

        return found;
    }

    /// <summary>The registries of the submission's <c>--cache-to</c> and <c>--cache-from</c> references.</summary>
    internal static IEnumerable<string> CacheRegistries(SubmitBuild submit) =>
        (submit.Options?.CacheTo ?? []).Select(Farm.Oci.Images.CacheSpec.ParseExport)
            .Concat((submit.Options?.CacheFrom ?? []).Select(Farm.Oci.Images.CacheSpec.ParseImport))
            .Select(c => c.Reference.Registry);

    /// <summary>
    /// Packs the context, uploads the tar and index to <paramref name="cacheStore"/> unless there, and returns the
    /// submission; with <paramref name="urlContext"/>, the farm fetches the context itself and only named directory
    /// contexts are uploaded.
    /// </summary>
    public static async Task<SubmitBuild> UploadAsync(BuildSettings settings, string dockerfile, string cacheStore, IProgressRenderer renderer, TextWriter? status, CancellationToken cancellationToken, UrlContext? urlContext = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(renderer);
        const string scheme = "registry://";
        var rest = cacheStore.StartsWith(scheme, StringComparison.Ordinal) ? cacheStore[scheme.Length..] : null;
        var slash = rest?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (rest is null || slash <= 0)
        {
            throw new InvalidCliArgumentException($"the farm's cache store {cacheStore} is not a registry://HOST/REPOSITORY the CLI can upload a context to");
        }

        var (registry, repository) = (rest[..slash], rest[(slash + 1)..]);
        using var client = new RegistryClient(registry, CliRegistryOptions.FromEnvironment(), DockerConfig.Default());
        SubmitBuild submit;
        if (urlContext is null)
        {
            var (tar, index) = await UploadContextAsync(client, repository, cacheStore, settings.ContextDirectory, settings.DockerfilePath, renderer, status, cancellationToken).ConfigureAwait(false);
            submit = settings.ToSubmit(dockerfile, tar, index);
        }
        else
        {
            submit = settings.ToSubmit(dockerfile, string.Empty, string.Empty) with { ContextIndexDigest = null, ContextUrl = urlContext };
        }

        var named = new List<NamedContext>();
        foreach (var context in settings.NamedContexts.Where(c => c.Kind == NamedContextKind.Directory))
        {
            var directory = BuildCommand.NamedDirectory(context);
            var (namedTar, namedIndex) = await UploadContextAsync(client, repository, cacheStore, directory, Path.Combine(directory, "Dockerfile"), renderer, status, cancellationToken).ConfigureAwait(false);
            named.Add(new NamedContext { Name = context.Name, ContextDigest = namedTar, ContextIndexDigest = namedIndex });
        }

        foreach (var context in settings.NamedContexts.Where(c => c.Kind == NamedContextKind.OciLayout))
        {
            using var upload = BuildTrace.StartChild("upload oci-layout context");
            named.Add(await OciLayoutContexts.UploadAsync(context, submit.BuildId, submit.Platforms, client, repository, cancellationToken).ConfigureAwait(false));
        }

        return named.Count == 0 ? submit : submit with
        {
            Options = (submit.Options ?? new SubmitBuildOptions()) with { NamedContexts = [.. submit.Options?.NamedContexts ?? [], .. named] },
        };
    }

    /// <summary>Packs one context directory and uploads its tar and index unless the cache store has them: their digests.</summary>
    private static async Task<(string Tar, string Index)> UploadContextAsync(RegistryClient client, string repository, string cacheStore, string directory, string dockerfilePath, IProgressRenderer renderer, TextWriter? status, CancellationToken cancellationToken)
    {
        PackedContext context;
        using (BuildTrace.StartChild("pack context"))
        {
            context = await PackedContext.PackAsync(directory, dockerfilePath, Path.GetTempPath(), new SlowProgress(status), cancellationToken).ConfigureAwait(false);
        }

        await using (context.ConfigureAwait(false))
        {
            using var upload = BuildTrace.StartChild("upload context");
            upload?.SetTag("farm.cache_store", cacheStore);
            if (await client.StatBlobAsync(repository, context.Tar.Digest, cancellationToken).ConfigureAwait(false) is null)
            {
                var tar = context.OpenTar();
                await using (tar.ConfigureAwait(false))
                {
                    await client.PushBlobAsync(repository, context.Tar, tar, mountFrom: null, cancellationToken).ConfigureAwait(false);
                }
            }

            var index = context.IndexDescriptor;
            if (await client.StatBlobAsync(repository, index.Digest, cancellationToken).ConfigureAwait(false) is null)
            {
                using var bytes = new MemoryStream(context.IndexBytes);
                await client.PushBlobAsync(repository, index, bytes, mountFrom: null, cancellationToken).ConfigureAwait(false);
            }

            upload?.Dispose();
            renderer.Render(BuildProgress.Typed("ContextPacked", new JsonObject
            {
                ["files"] = context.Packed.Files,
                ["bytes"] = context.Packed.Bytes,
                ["digest"] = context.Packed.Digest.ToString(),
                ["durationMs"] = Math.Round(context.Packed.Duration.TotalMilliseconds, 1),
            }));
            return (context.Tar.Digest.ToString(), index.Digest.ToString());
        }
    }

    public async Task<string> CacheStoreAsync(CancellationToken cancellationToken)
    {
        var body = await GetJsonAsync("store", cancellationToken).ConfigureAwait(false);
        return BuildProgress.Str(body, "cacheStore") is { Length: > 0 } store ? store : throw new RemoteFarmException(Url, "named no cache store at GET /store");
    }

    public Task<Guid> SubmitAsync(SubmitBuild submit, CancellationToken cancellationToken) => SubmitAsync(submit, null, cancellationToken);

    /// <summary>Submits a build; <paramref name="credentials"/>, when given, go in the <c>Farm-Registry-Auth</c> header, never in the body.</summary>
    public Task<Guid> SubmitAsync(SubmitBuild submit, IReadOnlyDictionary<string, RegistryCredential>? credentials, CancellationToken cancellationToken) =>
        SubmitAsync(submit, credentials, null, cancellationToken);

    /// <summary>
    /// Refuses to send <paramref name="secrets"/> to a remote farm where they must not go: an SSH agent (a socket on this
    /// machine) anywhere but the local farm, secrets over plain HTTP beyond loopback.
    /// </summary>
    /// <exception cref="SecretsRefusedException">FARM5091.</exception>
    internal void CheckSecrets(BuildSecretValues? secrets)
    {
        if (secrets is null)
        {
            return;
        }

        if (secrets.SshAgents.Count > 0)
        {
            throw new SecretsRefusedException($"--ssh forwards an SSH agent of this machine, which only the local farm (farm build without --farm / FARM_HOST) can reach; a remote farm cannot. Build without --farm, or fetch what the step needs over https with a --secret token instead.");
        }

        if (secrets.Secrets.Count > 0 && _bases.Any(b => b.Scheme != Uri.UriSchemeHttps && !b.IsLoopback))
        {
            throw new SecretsRefusedException($"--secret would cross the network readable to {string.Join(",", _urls)} (plain HTTP beyond loopback). Use the farm's https:// address.");
        }
    }

    /// <summary>
    /// Submits a build; <paramref name="credentials"/> go in the <c>Farm-Registry-Auth</c> header and
    /// <paramref name="secrets"/> in the <see cref="BuildSecretsHeader"/>, never in the body.
    /// </summary>
    public async Task<Guid> SubmitAsync(SubmitBuild submit, IReadOnlyDictionary<string, RegistryCredential>? credentials, BuildSecretValues? secrets, CancellationToken cancellationToken)
    {
        var registryAuth = credentials is { Count: > 0 } ? PushCredentialsHeader.Encode(credentials) : null;
        var secretsHeader = secrets is { Secrets.Count: > 0 } or { SshAgents.Count: > 0 } ? BuildSecretsHeader.Encode(secrets) : null;
        using var response = await SendAsync("builds", async uri =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = JsonContent.Create(submit, CliJson.Default.SubmitBuild) };
            if (registryAuth is not null)
            {
                request.Headers.Add(PushCredentialsHeader.Name, registryAuth);
            }

            if (secretsHeader is not null)
            {
                request.Headers.Add(BuildSecretsHeader.Name, secretsHeader);
            }

            // The coordinator's build span becomes a child of the CLI's (HttpClient would add it too, but only while
            // its own diagnostics are on).
            if (FarmTelemetry.TraceParent(Activity.Current) is { } traceParent)
            {
                request.Headers.Add("traceparent", traceParent);
            }

            return await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var body = await ReadAsync(response, "POST /builds", cancellationToken).ConfigureAwait(false);
        return Guid.TryParse(BuildProgress.Str(body, "buildId"), out var id) ? id : throw new RemoteFarmException(Url, "answered POST /builds without a build id");
    }

    /// <summary>
    /// Renders the events of build <paramref name="id"/> until it ends; 0 when it succeeded, else 1 after the error
    /// line. When the coordinator goes away mid-stream (it died, stopped, or the connection broke) the follow goes on
    /// after the last event rendered (<c>?after=seq</c>) on the next address (the same one when there is one), so no
    /// event is lost or rendered twice, and says so in one line on <see cref="Notices"/>; after
    /// <see cref="ReconnectWindow"/> without a coordinator answering it fails with FARM5020.
    /// </summary>
    public async Task<int> FollowAsync(Guid id, IProgressRenderer renderer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(renderer);
        var follow = new FollowState();
        (string Url, string Reason, DateTimeOffset Since)? lost = null;
        var delay = TimeSpan.FromMilliseconds(250);
        while (await FollowOnceAsync(id, renderer, follow, lost, cancellationToken).ConfigureAwait(false) is { } reason)
        {
            if (!follow.Numbered)
            {
                // A coordinator that does not number its events: where to go on from is unknown.
                renderer.Complete();
                throw new RemoteFarmException(Url, $"ended the event stream of build {id} before the build ended ({reason})");
            }

            var now = DateTimeOffset.UtcNow;
            if (follow.Connected || lost is null)
            {
                lost = (Url, reason, now);
                delay = TimeSpan.FromMilliseconds(250);
            }
            else if (now - lost.Value.Since > ReconnectWindow)
            {
                renderer.Complete();
                throw new FollowLostException(id, string.Join(',', _urls), follow.After, $"{lost.Value.Url}: {lost.Value.Reason}; last try, {Url}: {reason}");
            }

            _current = (_current + 1) % _bases.Length;
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxReconnectDelay.Ticks));
        }

        renderer.Complete();
        return BuildProgress.Str(follow.End!, "type") == "BuildFinished"
            ? 0
            : throw new RemoteBuildFailedException(BuildProgress.Str(follow.End!, "code"), BuildProgress.Str(follow.End!, "message"));
    }

    /// <summary>
    /// One connection's worth of following: null once the build's end event was rendered, else why the stream was
    /// lost. Only the first connection's answer can be an error to throw (an unknown build, a refusal); once events
    /// flowed, every failure is a loss to recover from.
    /// </summary>
    private async Task<string?> FollowOnceAsync(Guid id, IProgressRenderer renderer, FollowState follow, (string Url, string Reason, DateTimeOffset Since)? lost, CancellationToken cancellationToken)
    {
        follow.Connected = false;
        var path = string.Create(CultureInfo.InvariantCulture, $"builds/{id}/events?follow=true&after={follow.After}");
        try
        {
            using var response = await _http.GetAsync(new Uri(_bases[_current], path), HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (lost is null && !follow.Started)
            {
                await EnsureAsync(response, id, cancellationToken).ConfigureAwait(false);
            }
            else if (!response.IsSuccessStatusCode)
            {
                return $"answered {(int)response.StatusCode}";
            }

            follow.Started = true;
            follow.Connected = true;
            if (lost is { } was)
            {
                Notices?.Write($"farm: lost {was.Url} ({was.Reason}); following build {id} on {Url} after event {follow.After.ToString(CultureInfo.InvariantCulture)}\n");
                Notices?.Flush();
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0 || JsonNode.Parse(line) is not JsonObject buildEvent)
                {
                    continue;
                }

                if (buildEvent["seq"] is JsonValue value && value.TryGetValue<long>(out var seq))
                {
                    if (seq <= follow.After)
                    {
                        continue;
                    }

                    follow.After = seq;
                }
                else
                {
                    follow.Numbered = false;
                }

                renderer.Render(buildEvent);
                if (BuildProgress.Str(buildEvent, "type") is "BuildFinished" or "BuildFailed")
                {
                    follow.End = buildEvent;
                    return null;
                }
            }

            return "the event stream ended before the build did";
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException && !cancellationToken.IsCancellationRequested)
        {
            // HttpIOException (an IOException) is a response cut off; a JsonException, a line cut in half.
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>A dry run of <paramref name="submit"/> (<c>POST /builds/plan</c>): each layer step, cached or why it would run.</summary>
    public async Task<JsonNode?> PlanAsync(SubmitBuild submit, CancellationToken cancellationToken)
    {
        using var response = await SendAsync("builds/plan", uri => _http.PostAsync(uri, JsonContent.Create(submit, CliJson.Default.SubmitBuild), cancellationToken)).ConfigureAwait(false);
        return await ReadAsync(response, "POST /builds/plan", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The build's events so far (<c>GET /builds/{id}/events</c>, not followed), oldest first.</summary>
    public async Task<IReadOnlyList<JsonObject>> EventsAsync(Guid id, CancellationToken cancellationToken)
    {
        using var response = await SendAsync($"builds/{id}/events", uri => _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken)).ConfigureAwait(false);
        await EnsureAsync(response, id, cancellationToken).ConfigureAwait(false);
        var events = new List<JsonObject>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length > 0 && JsonNode.Parse(line) is JsonObject node)
            {
                events.Add(node);
            }
        }

        return events;
    }

    /// <summary>The id of the newest build the caller may see (<c>GET /api/builds</c>); null when there is none.</summary>
    public async Task<Guid?> LatestBuildAsync(CancellationToken cancellationToken) =>
        await GetJsonAsync("api/builds", cancellationToken).ConfigureAwait(false) is JsonArray { Count: > 0 } builds
        && Guid.TryParse(BuildProgress.Str(builds[0], "buildId"), out var id) ? id : null;

    /// <summary><c>GET /builds/{id}</c> as indented JSON.</summary>
    public async Task<string> StatusAsync(Guid id, CancellationToken cancellationToken)
    {
        using var response = await SendAsync($"builds/{id}", uri => _http.GetAsync(uri, cancellationToken)).ConfigureAwait(false);
        await EnsureAsync(response, id, cancellationToken).ConfigureAwait(false);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        return body?.ToJsonString(new JsonSerializerOptions(BuildProgress.Json) { WriteIndented = true }) ?? "{}";
    }

    /// <summary>
    /// Writes the build's step output lines (<c>[stepId] line</c>) to <paramref name="output"/>: what <c>GET
    /// /builds/{id}/logs</c> has so far, or, with <paramref name="follow"/>, every line to the build's end, followed as
    /// <see cref="FollowAsync"/> follows (on from the last event seen on another coordinator when one goes away). A
    /// followed build that failed ends the lines as one that succeeded does, as <c>docker logs -f</c> does.
    /// </summary>
    public Task LogsAsync(Guid id, bool follow, TextWriter output, CancellationToken cancellationToken) =>
        LogsAsync(id, follow, tail: null, output, cancellationToken);

    /// <summary>
    /// As <see cref="LogsAsync(Guid, bool, TextWriter, CancellationToken)"/>, from the last <paramref name="tail"/> lines
    /// the build has so far (<c>farm logs --tail N</c>, docker's semantics: with <paramref name="follow"/>, those lines and
    /// then every new one); null for all.
    /// </summary>
    public async Task LogsAsync(Guid id, bool follow, int? tail, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        var skip = 0L;
        if (tail is { } last)
        {
            // Counted from what the build has now; a follow replays the build's lines from its start, in order, so it
            // skips the same number and goes on from there.
            var lines = new Queue<string>();
            var total = 0L;
            await ReadLogLinesAsync(id, line =>
            {
                total++;
                lines.Enqueue(line);
                if (lines.Count > last)
                {
                    lines.Dequeue();
                }
            }, cancellationToken).ConfigureAwait(false);
            if (!follow)
            {
                foreach (var line in lines)
                {
                    output.Write(line + "\n");
                }

                output.Flush();
                return;
            }

            skip = Math.Max(0, total - last);
        }

        if (follow)
        {
            try
            {
                await FollowAsync(id, new StepLogLines(output, skip), cancellationToken).ConfigureAwait(false);
            }
            catch (RemoteBuildFailedException)
            {
            }

            return;
        }

        await ReadLogLinesAsync(id, line =>
        {
            output.Write(line + "\n");
            output.Flush();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// As <see cref="LogsAsync(Guid, bool, int?, TextWriter, CancellationToken)"/>, keeping only the lines from
    /// <paramref name="since"/> on (<c>farm logs --since</c>) and, with <paramref name="timestamps"/> (<c>-t</c>), each
    /// after its time as docker prints a container's (RFC 3339, UTC, nanoseconds). A line's time is when the worker
    /// read it from the step (<see cref="StepLogLine.At"/>), carried by the build's events; the plain text of
    /// <c>GET /builds/{id}/logs</c> has none, so these read <c>GET /builds/{id}/events</c>. <paramref name="tail"/> counts
    /// the lines kept, as docker's <c>--since</c> with <c>--tail</c>.
    /// </summary>
    public async Task LogsAsync(Guid id, bool follow, int? tail, DateTimeOffset? since, bool timestamps, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (since is null && !timestamps)
        {
            await LogsAsync(id, follow, tail, output, cancellationToken).ConfigureAwait(false);
            return;
        }

        var kept = new List<string>();
        await ReadEventsAsync(id, e =>
        {
            if (StepLogLines.Format(e, since, timestamps) is { } line)
            {
                kept.Add(line);
            }
        }, cancellationToken).ConfigureAwait(false);
        var skip = tail is { } last ? Math.Max(0, kept.Count - last) : 0;
        if (follow)
        {
            try
            {
                // A follow replays the build's events from its start, in order: the same lines are kept and skipped.
                await FollowAsync(id, new StepLogLines(output, skip, since, timestamps), cancellationToken).ConfigureAwait(false);
            }
            catch (RemoteBuildFailedException)
            {
            }

            return;
        }

        foreach (var line in kept.Skip(skip))
        {
            output.Write(line + "\n");
        }

        output.Flush();
    }

    /// <summary>Hands every event <c>GET /builds/{id}/events</c> has so far to <paramref name="handle"/>.</summary>
    private async Task ReadEventsAsync(Guid id, Action<JsonObject> handle, CancellationToken cancellationToken)
    {
        using var response = await SendAsync($"builds/{id}/events", uri => _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken)).ConfigureAwait(false);
        await EnsureAsync(response, id, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } text)
        {
            if (text.Length > 0 && JsonNode.Parse(text) is JsonObject buildEvent)
            {
                handle(buildEvent);
            }
        }
    }

    /// <summary>Hands every line <c>GET /builds/{id}/logs</c> has so far to <paramref name="line"/>.</summary>
    private async Task ReadLogLinesAsync(Guid id, Action<string> line, CancellationToken cancellationToken)
    {
        using var response = await SendAsync($"builds/{id}/logs", uri => _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken)).ConfigureAwait(false);
        await EnsureAsync(response, id, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } text)
        {
            line(text);
        }
    }

    public void Dispose() => _http.Dispose();

    private async Task<JsonNode?> GetJsonAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(path, uri => _http.GetAsync(uri, cancellationToken)).ConfigureAwait(false);
        return await ReadAsync(response, "GET /" + path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends to the coordinator asked now; one that refuses the connection (the request never reached it) passes the request to the next address.</summary>
    private async Task<HttpResponseMessage> SendAsync(string path, Func<Uri, Task<HttpResponseMessage>> send)
    {
        for (var tried = 1; ; tried++)
        {
            try
            {
                return await send(new Uri(_bases[_current], path)).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConnectionError && tried < _bases.Length)
            {
                _current = (_current + 1) % _bases.Length;
            }
            catch (HttpRequestException e)
            {
                throw new RemoteFarmException(Url, $"did not answer ({e.Message})", e);
            }
        }
    }

    /// <summary>The step output lines of a build's events, as <c>GET /builds/{id}/logs</c> writes them, after the first <c>skip</c>.</summary>
    /// <remarks>With <c>since</c>, only the lines from then on; with <c>timestamps</c>, each after its time.</remarks>
    private sealed class StepLogLines(TextWriter output, long skip = 0, DateTimeOffset? since = null, bool timestamps = false) : IProgressRenderer
    {
        private long _skip = skip;

        /// <summary>
        /// A <c>StepLog</c> event as a line of <c>farm logs</c>: <c>[STEP] TEXT</c>, after its time with
        /// <paramref name="stamped"/>; null for any other event or a line before <paramref name="from"/>. The line's
        /// own time, else (an event written before lines carried one) the event's.
        /// </summary>
        public static string? Format(JsonObject buildEvent, DateTimeOffset? from, bool stamped)
        {
            if (BuildProgress.Str(buildEvent, "type") != "StepLog" || buildEvent["line"] is not JsonObject line)
            {
                return null;
            }

            var text = $"[{BuildProgress.Str(line, "stepId")}] {BuildProgress.Str(line, "line")}";
            if (from is null && !stamped)
            {
                return text;
            }

            var at = Time(line) ?? Time(buildEvent);
            if (from is { } start && (at is null || at < start))
            {
                return null;
            }

            return stamped && at is { } time ? $"{LogSince.Stamp(time)} {text}" : text;
        }

        public void Render(JsonObject buildEvent)
        {
            if (Format(buildEvent, since, timestamps) is { } text)
            {
                if (_skip > 0)
                {
                    // Before the tail (farm logs -f --tail N).
                    _skip--;
                    return;
                }

                output.Write(text + "\n");
                output.Flush();
            }
        }

        private static DateTimeOffset? Time(JsonObject node) =>
            BuildProgress.Str(node, "at") is { Length: > 0 } text
            && DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var at) ? at : null;

        public void Complete() => output.Flush();

        public void Dispose()
        {
        }
    }

    /// <summary>Where a follow is: the last event rendered, whether it connected this time, and the end once rendered.</summary>
    private sealed class FollowState
    {
        public long After { get; set; }

        /// <summary>False once an event came without <c>seq</c> (an older coordinator): such a follow cannot go on elsewhere.</summary>
        public bool Numbered { get; set; } = true;

        /// <summary>A coordinator answered for this build at least once.</summary>
        public bool Started { get; set; }

        public bool Connected { get; set; }

        public JsonObject? End { get; set; }
    }

    private async Task<JsonNode?> ReadAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        ThrowIfRefused(response, text);
        if (!response.IsSuccessStatusCode)
        {
            throw new RemoteFarmException(Url, $"answered {what} with {(int)response.StatusCode}: {Error(text)}");
        }

        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            throw new RemoteFarmException(Url, $"answered {what} with something that is not JSON", e);
        }
    }

    private async Task EnsureAsync(HttpResponseMessage response, Guid id, CancellationToken cancellationToken)
    {
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new NoSuchBuildException(id.ToString(), Url);
        }

        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            ThrowIfRefused(response, text);
            throw new RemoteFarmException(Url, $"answered {(int)response.StatusCode} for build {id}: {Error(text)}");
        }
    }

    /// <summary>401 and 403 are the token's fault, not the farm's: say so (FARM5030).</summary>
    private void ThrowIfRefused(HttpResponseMessage response, string text)
    {
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            var reason = response.StatusCode == HttpStatusCode.Unauthorized
                ? FarmCredentials.Token() is null ? "requires a token and none was given" : "does not accept the token given"
                : "does not let this token do that";
            throw new FarmAuthException(Url, $"{reason} ({(int)response.StatusCode}: {Error(text)})");
        }
    }

    private static string Error(string body)
    {
        try
        {
            return JsonNode.Parse(body) is JsonObject o && BuildProgress.Str(o, "error") is { Length: > 0 } e ? e : body;
        }
        catch (JsonException)
        {
            return body.Length > 300 ? body[..300] : body;
        }
    }
}

/// <summary>A build on a remote farm failed: its own code and message (which already starts with the code).</summary>
internal sealed class RemoteBuildFailedException(string code, string message)
    : FarmException(string.IsNullOrEmpty(code) ? FarmErrorCodes.BuildInternal : code, StripCode(code, message))
{
    private static string StripCode(string code, string message) =>
        code.Length > 0 && message.StartsWith(code + ": ", StringComparison.Ordinal) ? message[(code.Length + 2)..] : message;
}

/// <summary>A follow lost its coordinator and no coordinator named answered within <see cref="RemoteFarm.ReconnectWindow"/> (FARM5020).</summary>
internal sealed class FollowLostException(Guid id, string farms, long after, string reason)
    : FarmException(FarmErrorCodes.FollowLost, $"lost build {id} after event {after.ToString(CultureInfo.InvariantCulture)}: no coordinator of {farms} answered within {RemoteFarm.ReconnectWindow.TotalMinutes.ToString(CultureInfo.InvariantCulture)} minutes ({reason}). The build may still run: ask with farm status {id}, and name every coordinator of the farm in --farm / FARM_HOST, comma-separated.");

/// <summary>Silent for a quick context; for a slow one a status line on standard error every half second.</summary>
internal sealed class SlowProgress(TextWriter? status) : IProgress<ContextProgress>
{
    private readonly Stopwatch _stopwatch = Stopwatch.StartNew();
    private TimeSpan _last = TimeSpan.FromSeconds(0.5);

    public void Report(ContextProgress value)
    {
        if (status is null || value.Done || _stopwatch.Elapsed < TimeSpan.FromSeconds(1) || _stopwatch.Elapsed - _last < TimeSpan.FromSeconds(0.5))
        {
            return;
        }

        _last = _stopwatch.Elapsed;
        status.Write($"farm: packing the build context: {value.Files} files, {BuildProgress.HumanBytes(value.Bytes)} ({BuildProgress.Seconds(_stopwatch.Elapsed)})\n");
        status.Flush();
    }
}
