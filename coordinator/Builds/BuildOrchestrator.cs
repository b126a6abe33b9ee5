using System.Collections.Concurrent;
using System.Collections.Immutable;
using Farm.Contracts;
using Farm.Coordinator.Assembly;
using Farm.Coordinator.Cache;
using Farm.Coordinator.Dispatch;
using Farm.Coordinator.Explain;
using Farm.Coordinator.Grains;
using Farm.Dockerfile.Planning;
using Farm.Coordinator.Telemetry;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.Registry;
using Farm.Oci.Stores;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using GraphStepKind = Farm.Dockerfile.Graph.StepKind;
using StepKind = Farm.Contracts.StepKind;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Runs one build from its request to a pushed (or exported) image (docs/architecture.md, "A build, step by step", 3 to 10):
/// plans the Dockerfile, pins every base image once, computes cache keys, answers layer steps from the action cache
/// or through the layer grains (one task per stage, a stage waiting only for the stages it needs), assembles the
/// target stage and pushes it.
/// </summary>
public sealed partial class BuildOrchestrator
{
    private readonly ILayerBuilds _layers;
    private readonly IActionCache _cache;
    private readonly BlobStoreLocator _stores;
    private readonly BuildLogHub? _logs;
    private readonly CacheKeyOptions _keyOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BaseImageResolver _baseImages;
    private readonly IKeyInputHistory? _history;
    private readonly RegistryBuildCache _registryCache;

    /// <summary>Where the coordinator may ask git for an ADD source's commit; null: anywhere (the local farm).</summary>
    private readonly Oci.Net.FetchFence? _gitFence;

    public BuildOrchestrator(
        ILayerBuilds layers,
        IActionCache cache,
        BlobStoreLocator stores,
        BuildLogHub? logs = null,
        CacheKeyOptions? keyOptions = null,
        TimeProvider? time = null,
        ILogger<BuildOrchestrator>? logger = null,
        IKeyInputHistory? history = null,
        Func<string, IReadOnlyList<string>?>? livePlatforms = null,
        Oci.Net.FetchFence? gitFence = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(stores);
        _layers = layers;
        _cache = cache;
        _stores = stores;
        _logs = logs;
        _keyOptions = keyOptions ?? new CacheKeyOptions();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<BuildOrchestrator>.Instance;
        _baseImages = new BaseImageResolver(_logger);
        _history = history;
        _registryCache = new RegistryBuildCache(_logger);
        _livePlatforms = livePlatforms;
        _gitFence = gitFence;
    }

    /// <summary>
    /// The platforms the farm's live workers run, all together; null when no worker has been heard of yet (a farm just
    /// started), and then a step of any platform is sent and waits for one. The argument is the platform asked about.
    /// </summary>
    private readonly Func<string, IReadOnlyList<string>?>? _livePlatforms;

    /// <summary>Runs the build; reports progress to <paramref name="progress"/> (from several threads at once).</summary>
    /// <exception cref="BuildStepFailedException">A step failed (FARM4201).</exception>
    /// <exception cref="BaseImageUnavailableException">A base image could not be pinned (FARM4202).</exception>
    /// <exception cref="FarmException">The Dockerfile, the context or the push failed (their own codes).</exception>
    public async Task<BuildResult> RunAsync(BuildRequest request, IProgress<BuildEvent>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var buildId = request.BuildId == Guid.Empty ? Guid.NewGuid() : request.BuildId;
        using var logSubscription = _logs?.Subscribe(buildId, line => progress?.Report(new StepLog(buildId, _time.GetUtcNow(), line)));
        try
        {
            var result = await RunCoreAsync(request with { BuildId = buildId }, progress, cancellationToken).ConfigureAwait(false);
            // The id of a multi-platform image is its index's digest, as buildx's --iidfile writes it.
            progress?.Report(new BuildFinished(buildId, _time.GetUtcNow(), result.ImageDigest, result.Pushed, result.Index is null ? result.Image.ConfigDescriptor.Digest.ToString() : result.ImageDigest));
            LogBuildFinished(_logger, buildId, result.ImageDigest, result.JobsRun, result.Steps.Count);
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var code = e is FarmException farm ? farm.Code : FarmErrorCodes.BuildInternal;
            progress?.Report(new BuildFailed(buildId, _time.GetUtcNow(), code, e.Message));
            LogBuildFailed(_logger, e, buildId, code);
            throw;
        }
    }

    /// <summary>
    /// A dry run (<c>farm build --dry-run</c>): plans the build, pins its base images and keys its steps as a build
    /// would, asks the action cache about each layer step and says why each miss would run; runs no step, pushes,
    /// exports, names and records nothing.
    /// </summary>
    public async Task<BuildPlanReport> DryRunAsync(BuildRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var cacheStore = await _stores.OpenAsync(request.CacheStore, cancellationToken).ConfigureAwait(false);
        using var clients = new BuildRegistryClients(_stores, request.RegistryAccess);
        var planned = await PlanAsync(request, request.Platforms.Count > 0 ? request.Platforms[0] : null, withHistory: true, cacheStore, clients, progress: null, cancellationToken).ConfigureAwait(false);
        var imported = await ImportCachesAsync(request, clients, progress: null, cancellationToken).ConfigureAwait(false);
        var steps = new List<PlannedStep>();
        foreach (var key in planned.Plan.Steps)
        {
            var step = planned.Graph.Stages[key.StageIndex].Steps.First(s => s.Id == key.StepId);
            var cached = key.Cacheable && !request.NoCache
                && (await _cache.TryGetAsync(key.Key, cancellationToken).ConfigureAwait(false) is not null || imported.TryGet(key.Key, out _, out _));
            steps.Add(new PlannedStep(key.StepId, step.Text, key.Key, cached, cached ? null : planned.Explainer?.Explain(key)));
        }

        return new BuildPlanReport(planned.Explainer?.Previous?.BuildId, steps);
    }

    /// <summary>
    /// The request for a submitted build: reads its context index from <paramref name="cacheStore"/> (where the CLI
    /// uploaded it beside the context tar). A submission without an index gets none: it builds as long as no step
    /// reads the context.
    /// </summary>
    /// <exception cref="ContextIndexUnavailableException">The index is not a digest, not in the store, or unreadable (FARM4203).</exception>
    public async Task<BuildRequest> LoadRequestAsync(SubmitBuild submit, string cacheStore, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(submit);
        var request = await LoadContextAsync(submit, cacheStore, cancellationToken).ConfigureAwait(false);
        var named = new Dictionary<string, NamedContextInput>(StringComparer.Ordinal);
        foreach (var context in submit.Options?.NamedContexts ?? [])
        {
            if (context.Image is not null || context.StoredImage is not null)
            {
                continue;
            }

            if (string.IsNullOrEmpty(context.ContextDigest) || string.IsNullOrEmpty(context.ContextIndexDigest))
            {
                throw new InvalidSubmissionException($"The named context '{context.Name}' has neither an image nor a contextDigest and contextIndexDigest: upload it to the cache store as the build's context is.");
            }

            // The same reading and verification as the build's own context: its index keys the COPY --from steps.
            var part = await LoadContextAsync(submit with { ContextDigest = context.ContextDigest, ContextIndexDigest = context.ContextIndexDigest }, cacheStore, cancellationToken).ConfigureAwait(false);
            named[context.Name] = new NamedContextInput(context.ContextDigest, part.ContextIndex!);
        }

        return named.Count == 0 ? request : request with { NamedContexts = named };
    }

    private async Task<BuildRequest> LoadContextAsync(SubmitBuild submit, string cacheStore, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(submit.ContextIndexDigest))
        {
            return BuildRequest.From(submit, index: null, cacheStore);
        }

        if (!Digest.TryParse(submit.ContextIndexDigest, out var digest, out var invalid))
        {
            throw new ContextIndexUnavailableException(submit.ContextIndexDigest, cacheStore, $"it is not a digest ({invalid})");
        }

        var store = await _stores.OpenAsync(cacheStore, cancellationToken).ConfigureAwait(false);
        try
        {
            ContextIndex index;
            var blob = await store.OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
            await using (blob.ConfigureAwait(false))
            {
                using var buffer = new MemoryStream();
                await blob.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                index = ContextIndex.Parse(buffer.ToArray());
            }

            await VerifyContextAsync(store, submit, index, cancellationToken).ConfigureAwait(false);
            return BuildRequest.From(submit, index, cacheStore);
        }
        catch (Exception e) when (e is (FarmException and not ContextIndexMismatchException) or System.Text.Json.JsonException or FormatException)
        {
            throw new ContextIndexUnavailableException(submit.ContextIndexDigest, cacheStore, e.Message, e);
        }
    }

    /// <summary>
    /// Checks the client's index against the context tar before its cache keys are trusted (docs/architecture.md, "Cache
    /// keys"); a pair once verified is remembered, as both are content-addressed (the last
    /// <see cref="VerifiedContextsKept"/> at most: a rebuild of the same context, the common case, reads no tar).
    /// </summary>
    /// <exception cref="ContextIndexMismatchException">The index does not describe the tar (FARM1212).</exception>
    private async Task VerifyContextAsync(IBlobStore store, SubmitBuild submit, ContextIndex index, CancellationToken cancellationToken)
    {
        var pair = submit.ContextDigest + "/" + submit.ContextIndexDigest;
        if (_verifiedContexts.ContainsKey(pair))
        {
            return;
        }

        if (!Digest.TryParse(submit.ContextDigest, out var tarDigest, out var invalid))
        {
            throw new ContextIndexMismatchException($"the context digest '{submit.ContextDigest}' is not a digest ({invalid})");
        }

        var tar = await store.OpenReadAsync(tarDigest, cancellationToken).ConfigureAwait(false);
        await using (tar.ConfigureAwait(false))
        {
            await ContextIndexVerifier.VerifyAsync(index, tar, cancellationToken).ConfigureAwait(false);
        }

        if (_verifiedContexts.Count >= VerifiedContextsKept)
        {
            // Forgetting costs one more read of a tar per context; no order is worth keeping for that.
            _verifiedContexts.Clear();
        }

        _verifiedContexts[pair] = 0;
    }

    private const int VerifiedContextsKept = 4096;

    private readonly ConcurrentDictionary<string, byte> _verifiedContexts = new(StringComparer.Ordinal);

    private async Task<BuildResult> RunCoreAsync(BuildRequest request, IProgress<BuildEvent>? progress, CancellationToken cancellationToken)
    {
        // Several platforms: one plan and one run per platform, side by side, then one index (docs/architecture.md,
        // "Platforms"). One platform (the usual case) goes the way it always did: no index, no extra round trip.
        var multi = request.Platforms.Count > 1;
        if (multi && request.Output is { Type: not OutputType.Oci } output)
        {
            throw new MultiPlatformOutputException(output.Type.ToString().ToLowerInvariant(), request.Platforms.Count);
        }

        var cacheStore = await _stores.OpenAsync(request.CacheStore, cancellationToken).ConfigureAwait(false);
        // Push targets and base images with the build's own credentials (its tenant's, or passed with it); the cache
        // store, a source of every push, stays the farm's.
        using var clients = new BuildRegistryClients(_stores, request.RegistryAccess);
        IReadOnlyList<string?> platforms = request.Platforms.Count == 0 ? [null] : [.. request.Platforms];
        var plans = new List<PlannedBuild>();
        foreach (var platform in platforms)
        {
            plans.Add(await PlanAsync(request, platform, withHistory: !multi, cacheStore, clients, progress, cancellationToken).ConfigureAwait(false));
        }

        var imported = await ImportCachesAsync(request, clients, progress, cancellationToken).ConfigureAwait(false);
        progress?.Report(new BuildStarted(request.BuildId, _time.GetUtcNow(), plans.Sum(p => p.Graph.StagesToBuild.Count()), plans.Sum(p => p.Plan.Steps.Count)));

        // 3. One task per stage; a stage awaits only the stages it depends on. The first failure cancels the rest.
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var runs = plans.Select(p => new BuildRun(request, p.Graph, p.Plan, p.Images, progress) { Epoch = p.Epoch, Explainer = p.Explainer, Label = multi ? p.Platform : null, CacheStore = cacheStore, Imported = imported, GitCommits = p.GitCommits }).ToList();
        // Concurrent: stage tasks read their dependencies' entries while later stages are still being added.
        var stageTaskSets = runs.Select(_ => new ConcurrentDictionary<int, Task<StageResult>>()).ToList();
        var all = new List<Task<StageResult>>();
        for (var i = 0; i < runs.Count; i++)
        {
            var (run, stageTasks) = (runs[i], stageTaskSets[i]);
            foreach (var stage in run.Graph.StagesToBuild)
            {
                var dependencies = stage.Dependencies.Select(d => stageTasks[d]).ToList();
                stageTasks[stage.Index] = RunStageGuardedAsync(run, stage, dependencies, stageTasks, failed);
                all.Add(stageTasks[stage.Index]);
            }
        }

        try
        {
            await Task.WhenAll(all).ConfigureAwait(false);
        }
        catch (Exception) when (all.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException) is { } first)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            throw;
        }
        finally
        {
            // Nothing of the build goes on after it returns: its action cache entries are written (or given up).
            await Task.WhenAll(runs.SelectMany(r => r.CacheWrites)).ConfigureAwait(false);
        }

        // 4. Assemble the target (its chain of stages down to an image or scratch), then push and export.
        var images = runs.Select((r, i) => Assemble(r, stageTaskSets[i].ToDictionary(p => p.Key, p => p.Value.Result))).ToList();
        var image = images[0];
        var index = multi ? ImageIndexContent.Create([.. images.Select((m, i) => (Platform.TryParse(plans[i].Platform)!, (ImageContent)m))]) : null;
        var pushed = new List<string>();
        if (request.Push && request.Tags.Count > 0)
        {
            using var pushSpan = CoordinatorTelemetry.StartPush(request.Tags);
            var pusher = new ImagePusher(clients.ClientFor);
            ImagePushResult result;
            try
            {
                result = index is null
                    ? await pusher.PushAsync(image, request.Tags, [cacheStore], null, cancellationToken).ConfigureAwait(false)
                    : await pusher.PushIndexAsync(index, request.Tags, [cacheStore], null, cancellationToken).ConfigureAwait(false);
            }
            catch (FarmException e) when (e is RegistryAuthenticationException or RegistryAccessDeniedException && request.RegistryAccess is { } access)
            {
                var registry = (e as RegistryAuthenticationException)?.Registry ?? ((RegistryAccessDeniedException)e).Registry;
                var targets = string.Join(", ", request.Tags.Where(t => ImageReference.TryParse(t, out var r) && string.Equals(r.Registry, registry, StringComparison.OrdinalIgnoreCase)));
                throw await access.ExplainAsync(e, registry, $"push {(targets.Length > 0 ? targets : "the image")}", cancellationToken).ConfigureAwait(false);
            }

            pushed.AddRange(result.References);
        }

        if (request.Output is { } exported)
        {
            if (index is null)
            {
                await ImageExporter.WriteAsync(image, exported, request.Tags, [cacheStore], cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ImageExporter.WriteAsync(index, exported, request.Tags, [cacheStore], cancellationToken).ConfigureAwait(false);
            }
        }

        await ExportCachesAsync(runs, clients, cancellationToken).ConfigureAwait(false);

        // The local image store names one image per name: of several platforms, the one this machine runs natively
        // (as `docker buildx build --load` loads one); the index itself is pushed or exported.
        var local = index is null ? image : images.Where((_, i) => plans[i].Platform == FarmPlatforms.Native).FirstOrDefault();
        if (request.LocalImages is { } store && local is not null)
        {
            var stored = await store.NameAsync(local, request.Tags, cancellationToken).ConfigureAwait(false);
            progress?.Report(new ImageStored(request.BuildId, _time.GetUtcNow(), stored.Id.ToString(), stored.ManifestDescriptor.Digest.ToString(), [.. request.Tags.Select(LocalImageStore.NormalizeName)]));
        }

        if (!multi)
        {
            await RecordInputsAsync(request, plans[0], cancellationToken).ConfigureAwait(false);
        }

        return new BuildResult
        {
            BuildId = request.BuildId,
            ImageDigest = (index?.Digest ?? image.Digest).ToString(),
            Image = image,
            Steps = [.. runs.SelectMany(r => r.Plan.Steps.Select(k => r.Outcomes[k.StepId]))],
            Pushed = pushed,
            Index = index,
        };
    }

    /// <summary>
    /// Steps 1 and 2 of a build: parses and plans the Dockerfile, pins every base image the target needs, keys every
    /// layer step and, with a key input history, finds the previous build of the same lineage to explain misses against.
    /// </summary>
    private async Task<PlannedBuild> PlanAsync(BuildRequest request, string? platform, bool withHistory, IBlobStore cacheStore, BuildRegistryClients clients, IProgress<BuildEvent>? progress, CancellationToken cancellationToken)
    {
        // SOURCE_DATE_EPOCH (a build arg, as BuildKit takes it) dates the image and clamps the layers' times; without it
        // the image is dated by the build, as docker's are.
        var epoch = request.Created ?? SourceDateEpoch.FromBuildArgs(request.BuildArgs);

        // 1. Plan once to learn which images the needed stages use, pin them, then plan with their configs.
        var graphOptions = platform is null ? request.GraphOptions() : request.GraphOptions() with { Platform = platform };
        // Parsed once; planned twice, the second time with the pinned images' configs (their ENV, WORKDIR, SHELL).
        var ast = DockerfileParser.Parse(request.Dockerfile, request.DockerfilePath);
        var draft = BuildGraph.Create(ast, graphOptions);
        var images = new Dictionary<string, ResolvedImage>(StringComparer.Ordinal);
        var localImages = request.LocalImages?.BaseImages(request.Pull);
        var storedImages = request.StoredImages();
        foreach (var (reference, imagePlatform) in BaseImageResolver.ImagesOf(draft))
        {
            ResolvedImage resolved;
            try
            {
                var wanted = Platform.TryParse(imagePlatform) ?? Platform.LinuxAmd64;
                resolved = storedImages.TryGetValue(reference, out var stored)
                    ? await _baseImages.ResolveStoredAsync(request.BuildId, reference, stored, wanted, cacheStore, cancellationToken).ConfigureAwait(false)
                    : await _baseImages.ResolveAsync(request.BuildId, reference, wanted, cacheStore, localImages, clients.ClientFor, cancellationToken).ConfigureAwait(false);
            }
            catch (BaseImageUnavailableException e) when (e.InnerException is RegistryAuthenticationException or RegistryAccessDeniedException && request.RegistryAccess is { } access)
            {
                var registry = (e.InnerException as RegistryAuthenticationException)?.Registry ?? ((RegistryAccessDeniedException)e.InnerException).Registry;
                throw await access.ExplainAsync(e.InnerException, registry, $"pull the base image {reference}", cancellationToken).ConfigureAwait(false);
            }

            images[BaseImageResolver.Key(reference, imagePlatform)] = resolved;
            progress?.Report(new BaseImageResolved(request.BuildId, _time.GetUtcNow(), reference, resolved.Digest.ToString()));
        }

        var graph = BuildGraph.Create(
            ast,
            graphOptions with { ResolveBaseImage = (reference, stagePlatform) => images.TryGetValue(BaseImageResolver.Key(reference, stagePlatform), out var image) ? image.BaseConfig : null });

        RefuseUnsupported(graph);
        RefuseUnrequested(graph, request.Entitlements);
        RequireSecrets(graph, request.SecretIds, request.SshIds);
        var gitCommits = await ResolveGitSourcesAsync(graph, cancellationToken).ConfigureAwait(false);

        // 2. Cache keys, with every image pinned to the digest resolved above, and what went into each.
        var (inputs, previous) = withHistory ? await HistoryAsync(request, cancellationToken).ConfigureAwait(false) : (null, null);
        var plan = CacheKeyPlanner.Compute(
            graph,
            request.ContextIndex,
            (reference, stagePlatform) => images.TryGetValue(BaseImageResolver.Key(reference, stagePlatform), out var image) ? image.Digest.ToString() : reference,
            _keyOptions with { SourceDateEpoch = epoch, Tenant = request.Tenant, GitCommits = gitCommits },
            request.NamedContexts.ToDictionary(p => p.Key, p => p.Value.Index, StringComparer.Ordinal),
            inputs);
        var explainer = inputs is null ? null : new StepExplainer(plan, previous, request.NoCache);
        return new PlannedBuild(graph, plan, images, explainer, epoch, graphOptions.Platform, gitCommits);
    }

    /// <summary>
    /// The digester of the build's key inputs and the previous build of its lineage; (null, null) without a history,
    /// or when it cannot be used (FARM4300, logged: a build never fails for want of an explanation).
    /// </summary>
    private async Task<(KeyInputsOptions? Inputs, BuildKeyInputs? Previous)> HistoryAsync(BuildRequest request, CancellationToken cancellationToken)
    {
        if (_history is null || request.Lineages.Count == 0)
        {
            return (null, null);
        }

        try
        {
            var digester = await _history.DigesterAsync(cancellationToken).ConfigureAwait(false);
            var previous = await _history.PreviousAsync(request.Lineages, cancellationToken).ConfigureAwait(false);
            return (new KeyInputsOptions { Digester = digester, BuildArgs = request.BuildArgs }, previous);
        }
        catch (KeyInputHistoryUnavailableException e)
        {
            LogHistoryUnavailable(_logger, e, request.BuildId, e.Code);
            return (null, null);
        }
    }

    /// <summary>
    /// Reads the build's <c>--cache-from</c> references before any step (docs/architecture.md, "Build caches in
    /// registries"). One that cannot be used is a warning (FARM4350), never a failure, as with buildx.
    /// </summary>
    private async Task<ImportedBuildCache> ImportCachesAsync(BuildRequest request, BuildRegistryClients clients, IProgress<BuildEvent>? progress, CancellationToken cancellationToken)
    {
        var specs = request.Options?.CacheFrom ?? [];
        if (specs.Count == 0 || request.NoCache)
        {
            return ImportedBuildCache.Empty;
        }

        var imported = new ImportedBuildCache();
        foreach (var value in specs)
        {
            var spec = CacheSpec.ParseImport(value);
            try
            {
                var (entries, source) = await RegistryBuildCache.ImportAsync(spec, clients.ClientFor, cancellationToken).ConfigureAwait(false);
                imported.Add(entries, source);
                var reference = spec.Reference.ToString();
                progress?.Report(new CacheImported(request.BuildId, _time.GetUtcNow(), reference, entries.Count));
                LogCacheImported(_logger, request.BuildId, reference, entries.Count);
            }
            catch (CacheImportSkippedException e)
            {
                progress?.Report(new CacheImported(request.BuildId, _time.GetUtcNow(), spec.Reference.ToString(), 0, e.Message));
                LogCacheImportSkipped(_logger, e, request.BuildId, spec.Reference.ToString());
            }
        }

        return imported;
    }

    /// <summary>
    /// Exports the build cache to each <c>--cache-to</c> reference once the image is built: with <c>mode=min</c> the
    /// layer steps of the stages the image is made of, with <c>mode=max</c> every layer step of the build; steps whose key
    /// does not determine their layer never. A failed export fails the build (FARM4351), as buildx's does, unless the
    /// value says <c>ignore-error=true</c>.
    /// </summary>
    private async Task ExportCachesAsync(IReadOnlyList<BuildRun> runs, BuildRegistryClients clients, CancellationToken cancellationToken)
    {
        var first = runs[0];
        var specs = first.Request.Options?.CacheTo ?? [];
        if (specs.Count == 0)
        {
            return;
        }

        foreach (var value in specs)
        {
            var spec = CacheSpec.ParseExport(value);
            // Every platform's steps go in one export; a key two platforms share (a step of a stage FROM scratch that
            // does not depend on the platform) is listed once.
            var entries = runs.SelectMany(run => ExportedEntries(run, spec.Mode))
                .DistinctBy(e => e.Key, StringComparer.Ordinal)
                .ToList();
            try
            {
                var (digest, layers) = await RegistryBuildCache.ExportAsync(spec, entries, first.CacheStore, clients.ClientFor, cancellationToken).ConfigureAwait(false);
                var (reference, manifest) = (spec.Reference.ToString(), digest.ToString());
                first.Progress?.Report(new CacheExported(first.Request.BuildId, _time.GetUtcNow(), reference, manifest, entries.Count, layers));
                LogCacheExported(_logger, first.Request.BuildId, reference, manifest, entries.Count, layers);
            }
            catch (CacheExportFailedException e) when (spec.IgnoreError)
            {
                first.Progress?.Report(new CacheExported(first.Request.BuildId, _time.GetUtcNow(), spec.Reference.ToString(), null, 0, 0, e.Message));
                LogCacheExportIgnored(_logger, e, first.Request.BuildId, spec.Reference.ToString());
            }
        }
    }

    /// <summary>
    /// The entries of one platform's run to export: with <c>mode=min</c> the cacheable layer steps of the stages the image is
    /// made of, with <c>mode=max</c> every cacheable layer step.
    /// </summary>
    private static IEnumerable<ExportedCacheEntry> ExportedEntries(BuildRun run, CacheExportMode mode)
    {
        var imageStages = new HashSet<int>();
        for (var stage = run.Graph.Target; ; stage = run.Graph.Stages[stage.BaseStage!.Value])
        {
            imageStages.Add(stage.Index);
            if (stage.BaseKind != StageBaseKind.Stage)
            {
                break;
            }
        }

        return run.Plan.Steps
            .Where(k => k.Cacheable && (mode == CacheExportMode.Max || imageStages.Contains(k.StageIndex)))
            .Where(k => run.Outcomes.ContainsKey(k.StepId))
            .Select(k => new ExportedCacheEntry(k.Key, run.Outcomes[k.StepId].Layer, run.LayerTimes[k.StepId]));
    }

    /// <summary>
    /// The commit each <c>ADD</c> git source of the steps to build names now (<c>git ls-remote</c>), once per source:
    /// the step is keyed by it and its worker checks out exactly it, so a moved branch is a new key and a build never
    /// mixes two commits of one ref. ssh remotes are refused: the coordinator's keys are not the build's; on a shared farm
    /// the repository's addresses pass the URL context policy first (<c>Farm:Builds:UrlContexts</c>).
    /// </summary>
    /// <exception cref="GitSourceUnavailableException">A ref could not be resolved (FARM1230, at the ADD's line).</exception>
    private async Task<IReadOnlyDictionary<string, string>> ResolveGitSourcesAsync(BuildGraph graph, CancellationToken cancellationToken)
    {
        var commits = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var step in graph.StagesToBuild.SelectMany(s => s.Steps))
        {
            if (step.Payload is not CopyPayload { Instruction: "ADD" } add)
            {
                continue;
            }

            foreach (var source in add.Sources.Where(GitSource.IsGit).Where(s => !commits.ContainsKey(s)))
            {
                try
                {
                    commits[source] = await (GitSource.Parse(source) with { Fence = _gitFence }).ResolveCommitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (GitCommandException e)
                {
                    throw new GitSourceUnavailableException(graph.FileName, step.Location.ToString(), source, e.Reason, e);
                }
                catch (Oci.Net.AddressRefusedException e)
                {
                    throw new GitSourceUnavailableException(graph.FileName, step.Location.ToString(), source, $"the farm does not fetch from it: {e.Message}", e);
                }
            }
        }

        return commits;
    }

    /// <summary>Records a finished build's key inputs as the latest of its lineages (a failure is logged: the next build only explains less).</summary>
    private async Task RecordInputsAsync(BuildRequest request, PlannedBuild planned, CancellationToken cancellationToken)
    {
        if (_history is null || planned.Explainer is null)
        {
            return;
        }

        try
        {
            var build = new BuildKeyInputs { BuildId = request.BuildId, At = _time.GetUtcNow(), Steps = [.. planned.Plan.Steps.Select(s => s.Inputs).OfType<StepKeyInputs>()] };
            await _history.RecordAsync(request.Lineages, build, cancellationToken).ConfigureAwait(false);
        }
        catch (KeyInputHistoryUnavailableException e)
        {
            LogHistoryUnavailable(_logger, e, request.BuildId, e.Code);
        }
    }

    /// <summary>Features whose result the job contract cannot express: building without them would be wrong, not slower.</summary>
    internal static void RefuseUnsupported(BuildGraph graph)
    {
        foreach (var stage in graph.StagesToBuild)
        {
            foreach (var step in stage.Steps)
            {
                var feature = step.Payload switch
                {
                    RunPayload { Security: "insecure" } => "RUN --security=insecure",
                    _ => null,
                };
                if (feature is not null)
                {
                    throw new UnsupportedBuildFeatureException(graph.FileName, step.Location.ToString(), feature);
                }
            }
        }
    }

    /// <summary>Steps that need an entitlement the build did not ask for (BuildKit's <c>--allow</c>).</summary>
    internal static void RefuseUnrequested(BuildGraph graph, IReadOnlyList<string> entitlements)
    {
        foreach (var step in graph.StagesToBuild.SelectMany(s => s.Steps))
        {
            if (step.Payload is RunPayload { Network: "host" } && !entitlements.Contains(Entitlements.NetworkHost, StringComparer.Ordinal))
            {
                throw EntitlementNotGrantedException.NotRequested(graph.FileName, step.Location.ToString(), "RUN --network=host", Entitlements.NetworkHost);
            }
        }
    }

    /// <summary>
    /// Refuses, before any job, a <c>required=true</c> secret or ssh mount the build was not given (BuildKit fails the
    /// step; failing first saves the steps before it). A mount that is not required and not given is left out.
    /// </summary>
    internal static void RequireSecrets(BuildGraph graph, IReadOnlyList<string> secretIds, IReadOnlyList<string> sshIds)
    {
        foreach (var step in graph.StagesToBuild.SelectMany(s => s.Steps))
        {
            if (step.Payload is not RunPayload run)
            {
                continue;
            }

            foreach (var mount in run.Mounts.Select(RunMount.Parse))
            {
                var given = mount.Type switch
                {
                    RunMountType.Secret => secretIds,
                    RunMountType.Ssh => sshIds,
                    _ => null,
                };
                if (given is not null && mount.Required && !given.Contains(mount.EffectiveId, StringComparer.Ordinal))
                {
                    throw new BuildSecretMissingException(graph.FileName, step.Location.ToString(), mount.Type == RunMountType.Ssh, mount.EffectiveId);
                }
            }
        }
    }

    private async Task<StageResult> RunStageGuardedAsync(
        BuildRun run,
        BuildStage stage,
        List<Task<StageResult>> dependencies,
        ConcurrentDictionary<int, Task<StageResult>> stageTasks,
        CancellationTokenSource failed)
    {
        try
        {
            await Task.WhenAll(dependencies).ConfigureAwait(false);
            return await RunStageAsync(run, stage, stageTasks, failed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await failed.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<StageResult> RunStageAsync(BuildRun run, BuildStage stage, ConcurrentDictionary<int, Task<StageResult>> stageTasks, CancellationToken cancellationToken)
    {
        using var stageSpan = CoordinatorTelemetry.StartStage(stage.Index, stage.Name);
        // Dependencies have completed: reading their results does not block.
        var layers = stage.BaseKind switch
        {
            StageBaseKind.Image => [.. run.Images[BaseImageResolver.Key(stage.BaseImage!, stage.Platform)].Layers],
            StageBaseKind.Stage => [.. stageTasks[stage.BaseStage!.Value].Result.Layers],
            _ => new List<LayerRef>(),
        };

        var stepLayers = new List<LayerRef?>();
        // What each step waited for, for the dashboard's critical path: the layer step below it, and for the stage's
        // first one the last layer step of every stage this one waited for (its base, COPY --from sources).
        IReadOnlyList<string> waited = [.. stage.Dependencies.Append(stage.BaseStage ?? -1).Where(d => d >= 0).Distinct().Select(run.FinalLayerStep).OfType<string>().Distinct(StringComparer.Ordinal).Select(run.EventId)];
        string? below = null;
        foreach (var step in stage.Steps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (step.Kind != GraphStepKind.Layer)
            {
                stepLayers.Add(null);
                continue;
            }

            var key = run.Plan.Find(step.Id) ?? throw new InvalidOperationException($"The cache key plan has no key for layer step {step.Id}.");
            var layerStep = LayerSteps.For(
                step,
                stageIndex => stageTasks[stageIndex].Result.Layers,
                image => run.Images[BaseImageResolver.Key(image, stage.Platform)].Layers,
                name => name is null ? run.Request.ContextDigest : run.Request.NamedContexts[name].ContextDigest,
                name => run.Graph.Stages.FirstOrDefault(s => s.Index < stage.Index && string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))?.Index,
                run.Request.Tenant,
                run.GitCommits);
            IReadOnlyList<string> dependsOn = below is null ? waited : [run.EventId(below)];
            // COPY --link: the worker makes the layer on an empty root, which its cache key assumes; the layer is still
            // stacked on the others below.
            ImmutableArray<LayerRef> parents = step.Payload is CopyPayload { Link: true } ? [] : [.. layers];
            var outcome = await RunStepAsync(run, stage, step, key, layerStep, parents, dependsOn, cancellationToken).ConfigureAwait(false);
            below = step.Id;
            run.Outcomes[step.Id] = outcome;
            stepLayers.Add(outcome.Layer);
            if (outcome.Layer is { } layer)
            {
                layers.Add(layer);
            }
        }

        return new StageResult(layers, stepLayers);
    }

    /// <summary>
    /// Records a built step in the action cache. A write that fails costs the next build a rebuild of the step, not
    /// this build: it is logged and swallowed, as is a write stopped by the build's cancellation.
    /// </summary>
    private async Task PutEntryAsync(Guid buildId, string key, ActionCacheEntry entry, CancellationToken cancellationToken)
    {
        try
        {
            await _cache.PutAsync(key, entry, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogCacheWriteFailed(_logger, e, buildId, key);
        }
    }

    private async Task<StepOutcome> RunStepAsync(BuildRun run, BuildStage stage, BuildStep step, StepCacheKey key, LayerStep layerStep, ImmutableArray<LayerRef> parents, IReadOnlyList<string> dependsOn, CancellationToken cancellationToken)
    {
        var request = run.Request;
        var started = _time.GetUtcNow();
        // In a build for several platforms, events and jobs name a step with its platform (the plan's id is per platform).
        var (stepId, text) = (run.EventId(step.Id), run.Label is null ? step.Text : $"[{run.Label}] {step.Text}");
        // The platform the step's programs run for: the stage's (a FROM --platform=$BUILDPLATFORM stage runs the builder's).
        var platform = stage.Platform == FarmPlatforms.Default ? null : stage.Platform;
        using var stepSpan = CoordinatorTelemetry.StartStep(stepId, text, key.Key, stage.Platform);
        StepOutcome outcome;
        var entry = key.Cacheable && !request.NoCache ? await _cache.TryGetAsync(key.Key, cancellationToken).ConfigureAwait(false) : null;
        if (entry is null && key.Cacheable && !request.NoCache && run.Imported.TryGet(key.Key, out var imported, out var source)
            && (imported.Layer is not { } importedLayer || await _registryCache.FetchLayerAsync(request.BuildId, key.Key, importedLayer, source, run.CacheStore, cancellationToken).ConfigureAwait(false)))
        {
            // --cache-from: the layer is in the build's store now; the farm's own cache takes the entry too, so the next
            // build hits without the import. Dated as the exporting farm dated it, so the image is the same.
            entry = new ActionCacheEntry { Layer = imported.Layer, Worker = $"cache {source}", Created = imported.Created, BuildId = request.BuildId };
            run.CacheWrites.Add(PutEntryAsync(request.BuildId, key.Key, entry, cancellationToken));
        }

        // A miss says why it runs: the explanation goes with the step's start, before any of its output.
        run.Progress?.Report(new StepStarted(request.BuildId, started, stepId, text, key.Key, entry is null ? run.Explainer?.Explain(key) : null, dependsOn));
        if (entry is not null)
        {
            outcome = new StepOutcome(stepId, text, key.Key, Cached: true, entry.Layer, entry.Worker, JobId: null, started, _time.GetUtcNow(), Timings: null, platform);
            run.LayerTimes[step.Id] = entry.Created; // the history dates a cached layer by when it was built, as BuildKit does
            LogStepCached(_logger, request.BuildId, step.Id, key.Key);
        }
        else
        {
            // A step of a platform no live worker runs would wait in its queue for good: refused now, and said why.
            if (platform is not null && _livePlatforms?.Invoke(platform) is { } live && !live.Contains(platform, StringComparer.Ordinal))
            {
                throw new NoWorkerForPlatformException(stepId, platform, live);
            }

            // A key that does not determine the layer, or --no-cache, must never meet a layer a grain remembers.
            var grainKey = key.Cacheable && !request.NoCache ? key.Key : $"{key.Key}#{request.BuildId:N}";
            // The step's secrets, for its worker to fetch while the job runs: the credential is refused once this
            // build stops waiting for the job.
            using var secrets = request.JobSecrets?.For(layerStep);
            var job = await _layers.BuildOrJoinAsync(
                grainKey,
                new LayerJobRequest
                {
                    BuildId = request.BuildId,
                    StepId = stepId,
                    BlobStore = request.CacheStore,
                    Parents = parents,
                    Step = layerStep,
                    Compression = request.Compression,
                    SourceDateEpoch = run.Epoch,
                    Platform = platform,
                    Secrets = secrets?.Grant,
                },
                cancellationToken).ConfigureAwait(false);
            if (job.Success is not { } success)
            {
                var failure = job.Failure ?? new JobFailure { Code = FarmErrorCodes.BuildInternal, Message = "the layer grain returned neither a layer nor a failure" };
                CoordinatorTelemetry.StepFailed(stepSpan, failure.Code, failure.ExitCode, failure.Worker, failure.Message);
                throw new BuildStepFailedException(stepId, text, step.Location.ToString(), failure.Code, failure.Message, failure.ExitCode, failure.OutputTail);
            }

            var layer = success.Layer?.ToLayerRef();
            // One time for the history and the cache entry, so a rebuild from the cache dates the step the same.
            var built = _time.GetUtcNow();
            if (key.Cacheable)
            {
                // The worker stored the blob before it reported LayerBuilt: the entry may be written now. The next
                // step does not wait for it (a durable write costs an fsync); the build does before it ends.
                run.CacheWrites.Add(PutEntryAsync(request.BuildId, key.Key, new ActionCacheEntry { Layer = layer, Worker = success.Worker, Created = built, BuildId = request.BuildId }, cancellationToken));
            }

            outcome = new StepOutcome(stepId, text, key.Key, Cached: false, layer, success.Worker, job.JobId, started, built, success.Timings, platform, success.Emulated);
            run.LayerTimes[step.Id] = built;
            LogStepBuilt(_logger, request.BuildId, step.Id, key.Key, success.Worker);
        }

        CoordinatorTelemetry.StepFinished(stepSpan, outcome);
        run.Progress?.Report(new StepFinished(request.BuildId, outcome.Finished, outcome));
        return outcome;
    }

    private AssembledImage Assemble(BuildRun run, Dictionary<int, StageResult> stages)
    {
        var (request, graph, images) = (run.Request, run.Graph, run.Images);
        // The target's chain: the target, its base stage, that one's base ... down to an image or scratch.
        var chain = new List<BuildStage>();
        for (var stage = graph.Target; ; stage = graph.Stages[stage.BaseStage!.Value])
        {
            chain.Insert(0, stage);
            if (stage.BaseKind != StageBaseKind.Stage)
            {
                break;
            }
        }

        var root = chain[0];
        var baseImage = root.BaseKind == StageBaseKind.Image
            ? new BaseImage { Config = images[BaseImageResolver.Key(root.BaseImage!, root.Platform)].Config, Layers = images[BaseImageResolver.Key(root.BaseImage!, root.Platform)].Manifest.Layers }
            : BaseImage.Scratch(Platform.TryParse(root.Platform));
        var steps = chain.SelectMany(s => s.Steps.Zip(stages[s.Index].StepLayers, (step, layer) =>
            AssemblyStep.From(step, layer) with { Created = run.LayerTimes.TryGetValue(step.Id, out var built) ? built : null })).ToList();
        return new ImageAssembler(_time).Assemble(new AssemblyRequest
        {
            Base = baseImage,
            Steps = steps,
            Config = graph.Target.Config,
            ConfigIncludesBase = root.BaseKind == StageBaseKind.Scratch || root.BaseConfigResolved,
            BuildLabels = request.Labels,
            Created = run.Epoch,
        });
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId}: imported {Entries} cache entries from {CacheReference}")]
    private static partial void LogCacheImported(ILogger logger, Guid buildId, string cacheReference, int entries);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the build cache {CacheReference} was not imported; the build goes on without it")]
    private static partial void LogCacheImportSkipped(ILogger logger, Exception exception, Guid buildId, string cacheReference);

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId}: exported {Entries} cache entries with {Layers} layers to {CacheReference} as {Digest}")]
    private static partial void LogCacheExported(ILogger logger, Guid buildId, string cacheReference, string digest, int entries, int layers);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: exporting the build cache to {CacheReference} failed; ignored as its --cache-to asks")]
    private static partial void LogCacheExportIgnored(ILogger logger, Exception exception, Guid buildId, string cacheReference);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Build {BuildId}: step {StepId} cached under {CacheKey}")]
    private static partial void LogStepCached(ILogger logger, Guid buildId, string stepId, string cacheKey);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: the action cache did not take the entry for {CacheKey}; the next build runs the step again")]
    private static partial void LogCacheWriteFailed(ILogger logger, Exception exception, Guid buildId, string cacheKey);

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId}: step {StepId} built under {CacheKey} by {Worker}")]
    private static partial void LogStepBuilt(ILogger logger, Guid buildId, string stepId, string cacheKey, string worker);

    [LoggerMessage(Level = LogLevel.Information, Message = "Build {BuildId} finished: image {Digest}, {Jobs} of {Steps} layer steps built")]
    private static partial void LogBuildFinished(ILogger logger, Guid buildId, string digest, int jobs, int steps);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId}: {Code}: the record of earlier builds' key inputs cannot be used; the build goes on without saying why its steps run")]
    private static partial void LogHistoryUnavailable(ILogger logger, Exception exception, Guid buildId, string code);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Build {BuildId} failed with {Code}")]
    private static partial void LogBuildFailed(ILogger logger, Exception exception, Guid buildId, string code);

    /// <summary>A built stage: its whole filesystem (base layers first) and the layer of each step (null for none).</summary>
    private sealed record StageResult(IReadOnlyList<LayerRef> Layers, IReadOnlyList<LayerRef?> StepLayers);

    /// <summary>A planned build: its graph, keys, pinned images, and (with a history) what explains its misses.</summary>
    private sealed record PlannedBuild(BuildGraph Graph, CacheKeyPlan Plan, Dictionary<string, ResolvedImage> Images, StepExplainer? Explainer, DateTimeOffset? Epoch, string Platform, IReadOnlyDictionary<string, string> GitCommits);

    private sealed class BuildRun(BuildRequest request, BuildGraph graph, CacheKeyPlan plan, IReadOnlyDictionary<string, ResolvedImage> images, IProgress<BuildEvent>? progress)
    {
        public BuildRequest Request { get; } = request;

        public BuildGraph Graph { get; } = graph;

        public CacheKeyPlan Plan { get; } = plan;

        public IReadOnlyDictionary<string, ResolvedImage> Images { get; } = images;

        public IProgress<BuildEvent>? Progress { get; } = progress;

        /// <summary>Says why a step missed the cache; null without a key input history.</summary>
        public StepExplainer? Explainer { get; init; }

        /// <summary>The commits the build's ADD git sources were resolved to when it was planned.</summary>
        public IReadOnlyDictionary<string, string> GitCommits { get; init; } = new Dictionary<string, string>();

        /// <summary>The platform this run builds, in a build for several; null in a build for one.</summary>
        public string? Label { get; init; }

        /// <summary>A step's id in events and jobs: the plan's, after the platform in a build for several (<c>linux/arm64:s1/2</c>).</summary>
        public string EventId(string stepId) => Label is null ? stepId : Label + ":" + stepId;

        /// <summary>The last layer step of a stage, or of the stage it is built on when it has none; null down to an image.</summary>
        public string? FinalLayerStep(int stageIndex)
        {
            for (var stage = Graph.Stages[stageIndex]; ; stage = Graph.Stages[stage.BaseStage!.Value])
            {
                if (stage.Steps.LastOrDefault(s => s.Kind == GraphStepKind.Layer) is { } last)
                {
                    return last.Id;
                }

                if (stage.BaseKind != StageBaseKind.Stage)
                {
                    return null;
                }
            }
        }

        public ConcurrentDictionary<string, StepOutcome> Outcomes { get; } = new(StringComparer.Ordinal);

        /// <summary>The action cache writes of the steps run so far; they never throw (see <see cref="PutEntryAsync"/>).</summary>
        public ConcurrentBag<Task> CacheWrites { get; } = [];

        /// <summary>The build's blob store, where imported layers are put.</summary>
        public required IBlobStore CacheStore { get; init; }

        /// <summary>The entries of the build's <c>--cache-from</c> references.</summary>
        public ImportedBuildCache Imported { get; init; } = ImportedBuildCache.Empty;

        /// <summary>The build's SOURCE_DATE_EPOCH; null dates the image by the build.</summary>
        public DateTimeOffset? Epoch { get; init; }

        /// <summary>When each layer step's layer was built (for a cached step, when the cache entry was written).</summary>
        public ConcurrentDictionary<string, DateTimeOffset> LayerTimes { get; } = new(StringComparer.Ordinal);
    }
}
