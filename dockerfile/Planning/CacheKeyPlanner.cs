using System.Globalization;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Oci;

namespace Farm.Dockerfile.Planning;

/// <summary>
/// Computes the cache key of every layer step of a build graph (docs/architecture.md, "Cache keys"):
/// <c>key(step) = SHA-256(format, salt, key(parent), instruction after expansion, inputs)</c>.
/// </summary>
/// <remarks>
/// <para>Inputs per step, written in this order with <see cref="CacheKeyWriter"/> after the fields
/// <c>salt</c>, <c>parent</c>, <c>instruction</c> (the keyword) and <c>text</c> (the expanded instruction):</para>
/// <list type="bullet">
/// <item>Stage base: an image is its platform and its <b>resolved manifest digest</b> (never the tag); scratch is a
/// fixed key (only the salt and the format change it); a stage built on another stage starts from that stage's
/// final key.</item>
/// <item>RUN: argv as executed (SHELL included), env (base image ENV, ENV and every ARG in scope, sorted; proxy
/// args excluded, as BuildKit does), user, workdir, network, security, each <c>--mount</c> as written plus the key
/// of what it binds (a stage's final key, an image digest, or the selected context files for a bind from the
/// context), heredoc bodies. Secret values never appear in a mount spec, so they never reach a key.</item>
/// <item>COPY/ADD: sources as written, workdir, destination, --chown, --chmod, --link, --parents, --exclude,
/// --checksum, --keep-git-dir, --unpack, inline heredoc files, and the content of what the sources select: from
/// the context, each selected entry's path, type, mode, uid/gid (0:0, the context tar's), size and sha256 (never a
/// time), selected over the context index by <see cref="CopySourceResolver"/>, the code the worker copies with;
/// <c>--from=stage</c> the stage's final key; <c>--from=image</c> the image's digest. An http(s) URL is its text plus <c>--checksum</c>; without a
/// checksum (or for a git source) the step is not cacheable.</item>
/// <item>COPY --link: the same inputs, but the fixed parent <c>link:empty-root</c> instead of the key below, since
/// the worker makes the layer on an empty root (BuildKit's <c>--link</c>); a change below keeps it cached. The steps
/// after it chain on <c>SHA-256(salt, "stack", key below, key of the link layer)</c>, so they still see both.</item>
/// <item>WORKDIR: the path and the user.</item>
/// <item>Every layer step: the build's <c>SOURCE_DATE_EPOCH</c> when it sets one (it clamps the layer's times).</item>
/// </list>
/// <para>Config-only steps (ENV, ARG, USER, LABEL, CMD, EXPOSE, ...) get no key and are not links of the chain:
/// a change there reaches the layers only through what later steps actually use (RUN's env, user and workdir, the
/// expanded words of COPY). So changing a LABEL or CMD keeps every layer cached, as in BuildKit.</para>
/// <para>A step that is not cacheable still gets a deterministic key (for display and single flight within a
/// build), but it and everything built on it, in its stage and in dependent stages, is marked not cacheable.</para>
/// </remarks>
public static class CacheKeyPlanner
{
    /// <summary>Computes keys for the stages the target needs.</summary>
    /// <param name="graph">The planned Dockerfile.</param>
    /// <param name="index">
    /// The build context's index (paths, modes, sizes, hashes); null when the submission named none, which is fine as
    /// long as no step reads the context.
    /// </param>
    /// <param name="resolveImageDigest">
    /// Maps an image reference to its manifest digest (<c>sha256:...</c>), pinned once per build by the caller.
    /// A value that is not a digest (an unresolved name) still yields keys, marked not cacheable.
    /// </param>
    /// <param name="options">The farm-wide salt.</param>
    /// <param name="inputs">
    /// When set, every step's <see cref="StepCacheKey.Inputs"/> records what went into its key, as digests, so that a
    /// later build can say which input changed (docs/architecture.md, "Why a step ran").
    /// </param>
    /// <exception cref="BuildContextException">A COPY source leaves the context, matches nothing, or is malformed.</exception>
    /// <exception cref="ContextIndexUnavailableException">A step reads the context, but <paramref name="index"/> is null (FARM4203).</exception>
    public static CacheKeyPlan Compute(BuildGraph graph, ContextIndex? index, Func<string, string> resolveImageDigest, CacheKeyOptions? options = null, KeyInputsOptions? inputs = null) =>
        Compute(graph, index, resolveImageDigest, options, namedContexts: null, inputs);

    /// <summary>
    /// Computes keys; <paramref name="namedContexts"/> are the indexes of the named directory contexts
    /// (<c>COPY --from=NAME</c>); with <paramref name="inputs"/>, each key's inputs are recorded as well (why a step ran).
    /// </summary>
    /// <exception cref="ContextIndexUnavailableException">A step reads a context whose index is not given (FARM4203).</exception>
    public static CacheKeyPlan Compute(BuildGraph graph, ContextIndex? index, Func<string, string> resolveImageDigest, CacheKeyOptions? options, IReadOnlyDictionary<string, ContextIndex>? namedContexts, KeyInputsOptions? inputs = null)
    {
        ArgumentNullException.ThrowIfNull(resolveImageDigest);
        return Compute(graph, index, (reference, _) => resolveImageDigest(reference), options, namedContexts, inputs);
    }

    /// <summary>
    /// Computes keys with images pinned per platform: <paramref name="resolveImageDigest"/> takes the reference and the
    /// platform of the stage that names it (<c>FROM --platform=$BUILDPLATFORM</c> stages and the others of one build
    /// may name one image for two platforms, and an index gives each its own manifest).
    /// </summary>
    /// <exception cref="ContextIndexUnavailableException">A step reads a context whose index is not given (FARM4203).</exception>
    public static CacheKeyPlan Compute(BuildGraph graph, ContextIndex? index, Func<string, string, string> resolveImageDigest, CacheKeyOptions? options, IReadOnlyDictionary<string, ContextIndex>? namedContexts, KeyInputsOptions? inputs = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(resolveImageDigest);
        var context = index is null ? null : new CopySourceResolver(new ContextIndexTree(index));
        var named = (namedContexts ?? new Dictionary<string, ContextIndex>()).ToDictionary(p => p.Key, p => new CopySourceResolver(new ContextIndexTree(p.Value)), StringComparer.Ordinal);
        var planner = new Planner(graph, context, resolveImageDigest, options ?? new CacheKeyOptions(), named, inputs);
        return planner.Run();
    }

    /// <summary>Whether ADD treats a source as a remote URL (the worker downloads http and https).</summary>
    internal static bool IsUrl(string source) =>
        source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    private sealed class Planner(BuildGraph graph, CopySourceResolver? context, Func<string, string, string> resolve, CacheKeyOptions options, Dictionary<string, CopySourceResolver> namedContexts, KeyInputsOptions? inputsOptions)
    {
        private readonly Dictionary<int, StageCacheKey> _stages = [];
        private readonly Dictionary<string, string> _images = new(StringComparer.Ordinal);
        private BuildStep? _step;
        private InputsRecorder? _inputs;
        private int _filesRecorded;

        /// <summary>The context, for the step being keyed; a submission without an index may not read it.</summary>
        private CopySourceResolver Context =>
            context ?? throw ContextIndexUnavailableException.NotNamed(graph.FileName, _step!.Location.ToString(), _step.Id, _step.Text);

        public CacheKeyPlan Run()
        {
            var steps = new List<StepCacheKey>();
            foreach (var stage in graph.StagesToBuild)
            {
                var (baseKey, cacheable, reason) = BaseKey(stage);
                var (baseReference, baseDigest) = BaseOf(stage);
                var parent = baseKey;
                foreach (var step in stage.Steps)
                {
                    if (step.Kind != StepKind.Layer)
                    {
                        continue;
                    }

                    // COPY --link makes its layer on an empty root: what lies below is no input of that layer, only of
                    // the stack it joins, so the steps after it chain on both.
                    var link = step.Payload is CopyPayload { Link: true };
                    var keyParent = link ? LinkParent : parent;
                    var (key, stepReason) = StepKey(stage, step, keyParent);
                    if (cacheable && stepReason is not null)
                    {
                        cacheable = false;
                        reason = $"{step.Id} ({step.Instruction}): {stepReason}";
                    }

                    var inputs = _inputs?.Finish(step, stage.Index, key, keyParent, !link && parent == baseKey, baseReference, baseDigest);
                    steps.Add(new StepCacheKey(step.Id, stage.Index, key, keyParent, cacheable, cacheable ? null : reason) { Inputs = inputs });
                    parent = link ? Stacked(parent, key) : key;
                }

                _stages[stage.Index] = new StageCacheKey(stage.Index, baseKey, parent, cacheable, cacheable ? null : reason);
            }

            return new CacheKeyPlan(steps, [.. _stages.Values.OrderBy(s => s.StageIndex)]);
        }

        /// <summary>The key a <c>COPY --link</c> layer has instead of the layers below: its root is always empty.</summary>
        internal const string LinkParent = "link:empty-root";

        /// <summary>The key of a stack: the layers <paramref name="below"/> with the independent layer <paramref name="layer"/> on top.</summary>
        private string Stacked(string below, string layer)
        {
            using var w = new CacheKeyWriter();
            w.Add("salt", options.Salt).Add("instruction", "stack").Add("below", below).Add("layer", layer);
            return w.Finish();
        }

        private (string Key, bool Cacheable, string? Reason) BaseKey(BuildStage stage)
        {
            using var w = new CacheKeyWriter();
            w.Add("salt", options.Salt).Add("instruction", "FROM");
            switch (stage.BaseKind)
            {
                case StageBaseKind.Scratch:
                    // Nothing about scratch varies, not even the platform: an empty root is the same everywhere.
                    w.Add("base", "scratch");
                    return (w.Finish(), true, null);
                case StageBaseKind.Stage:
                    var from = StageKey(stage.BaseStage!.Value);
                    w.Add("base", "stage").Add("stage-key", from.FinalKey).Add("platform", stage.Platform);
                    return (w.Finish(), from.Cacheable, from.Cacheable ? null : $"base stage {from.StageIndex} is not cacheable: {from.NotCacheableReason}");
                default:
                    var image = stage.BaseImage ?? string.Empty;
                    var (digest, pinned) = Image(image, stage.Platform);
                    w.Add("base", "image").Add("platform", stage.Platform).Add("digest", digest);
                    return (w.Finish(), pinned, pinned ? null : Unpinned(image));
            }
        }

        private (string Key, string? NotCacheable) StepKey(BuildStage stage, BuildStep step, string parent)
        {
            using var w = new CacheKeyWriter();
            w.Add("salt", options.Salt).Add("parent", parent).Add("instruction", step.Instruction).Add("text", step.Text);
            if (options.SourceDateEpoch is { } epoch)
            {
                w.Add("source-date-epoch", epoch.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
            }

            _step = step;
            _inputs = inputsOptions is null ? null : new InputsRecorder(inputsOptions, step);
            var reason = step.Payload switch
            {
                RunPayload run => Run(w, stage, run),
                CopyPayload copy => Copy(w, stage, copy),
                WorkdirPayload workdir => Workdir(w, workdir),
                _ => throw new InvalidOperationException($"Step {step.Id} is a layer step with a {step.Payload.GetType().Name}; the planner knows RUN, COPY, ADD and WORKDIR."),
            };
            return (w.Finish(), reason);
        }

        private string? Run(CacheKeyWriter w, BuildStage stage, RunPayload run)
        {
            string? reason = null;
            w.Add("argv", run.Argv)
                .Add("env", [.. run.Env.Order(StringComparer.Ordinal)])
                .Add("user", run.User)
                .Add("workdir", run.Workdir)
                .Add("network", run.Network)
                .Add("security", run.Security)
                .Add("mounts", run.Mounts.Count);
            // A stage that comes down to scratch keys no platform in its FROM (an empty root is the same everywhere, so
            // its COPY layers are shared by every platform), but what a RUN does depends on the platform it runs on.
            if (RootsAtScratch(stage))
            {
                w.Add("platform", stage.Platform);
            }

            // Only when set, so the keys of builds without them stay what they were.
            if (run.ExtraHosts.Count > 0 || run.ShmSizeBytes is not null || run.Ulimits.Count > 0)
            {
                w.Add("extra-hosts", run.ExtraHosts)
                    .Add("shm-size", run.ShmSizeBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    .Add("ulimits", [.. run.Ulimits.Select(u => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{u.Name}={u.Soft}:{u.Hard}"))]);
            }

            _inputs?.Run(run);
            foreach (var mount in run.Mounts)
            {
                w.Add("mount", mount);
                var fields = ParseMount(mount);
                var type = fields.GetValueOrDefault("type") ?? "bind";
                if (fields.GetValueOrDefault("from") is { Length: > 0 } from)
                {
                    var (key, why) = FromKey(stage, from);
                    w.Add("mount-from", key);
                    _inputs?.Source(from, key);
                    reason ??= why;
                }
                else if (type == "bind")
                {
                    // A bind from the context: what the command reads is part of its input.
                    var source = fields.GetValueOrDefault("source") ?? fields.GetValueOrDefault("src") ?? ".";
                    AddEntries(w, Context.Select([source], [], "RUN --mount"));
                }
            }

            // What a step makes with a secret, an SSH agent or a cache may depend on what only its tenant has (a private
            // package fetched with the tenant's token, files left in its cache): on a shared farm such a step is keyed
            // by its tenant, so another tenant's build of the same Dockerfile never takes (or joins) its layer.
            if (options.Tenant is { } tenant && run.Mounts.Any(m => (ParseMount(m).GetValueOrDefault("type") ?? "bind") is "secret" or "ssh" or "cache"))
            {
                w.Add("tenant", tenant);
            }

            w.Add("files", run.Files.Count);
            foreach (var file in run.Files)
            {
                w.Add("file-name", file.Name).Add("file-fd", file.FileDescriptor).Add("file-expand", file.Expand).Add("file-content", file.Content);
            }

            return reason;
        }

        private string? Copy(CacheKeyWriter w, BuildStage stage, CopyPayload copy)
        {
            string? reason = null;
            w.Add("sources", copy.Sources)
                .Add("workdir", copy.Workdir)
                .Add("destination", copy.Destination)
                .Add("chown", copy.Chown)
                .Add("chmod", copy.Chmod)
                .Add("link", copy.Link)
                .Add("parents", copy.Parents)
                .Add("exclude", copy.Exclude)
                .Add("checksum", copy.Checksum)
                .Add("keep-git-dir", copy.KeepGitDir)
                .Add("unpack", copy.Unpack?.ToString(CultureInfo.InvariantCulture));
            _inputs?.Copy(copy);
            w.Add("inline-files", copy.InlineFiles.Count);
            foreach (var file in copy.InlineFiles)
            {
                w.Add("file-name", file.Name).Add("file-expand", file.Expand).Add("file-content", file.Content);
            }

            switch (copy.From.Kind)
            {
                case CopySourceKind.Stage:
                    var from = StageKey(copy.From.Stage!.Value);
                    w.Add("from", "stage").Add("from-key", from.FinalKey);
                    _inputs?.Source(StageName(from.StageIndex), from.FinalKey);
                    return from.Cacheable ? null : $"--from stage {from.StageIndex} is not cacheable: {from.NotCacheableReason}";
                case CopySourceKind.Image:
                    var image = copy.From.Image ?? string.Empty;
                    var (digest, pinned) = Image(image, stage.Platform);
                    w.Add("from", "image").Add("platform", stage.Platform).Add("from-digest", digest);
                    _inputs?.Source(image, digest);
                    return pinned ? null : Unpinned(image);
            }

            w.Add("from", "context");
            var resolver = copy.From.ContextName is { } name
                ? namedContexts.GetValueOrDefault(name) ?? throw ContextIndexUnavailableException.NotNamed(graph.FileName, _step!.Location.ToString(), _step.Id, _step.Text)
                : null;
            if (copy.From.ContextName is not null)
            {
                w.Add("context-name", copy.From.ContextName);
            }

            var local = new List<string>();
            foreach (var source in copy.Sources)
            {
                if (copy.Instruction == "ADD" && GitSource.IsGit(source))
                {
                    // A branch or tag moves: the key is of the commit it named when the build was planned, which the
                    // worker then checks out (and nothing else).
                    if (options.GitCommits?.GetValueOrDefault(source) is { } commit)
                    {
                        w.Add("git-commit", commit);
                        _inputs?.Source(source, commit);
                    }
                    else
                    {
                        reason ??= $"ADD of the git source '{source}' is not cached: its ref was not resolved to a commit";
                    }
                }
                else if (copy.Instruction == "ADD" && IsUrl(source))
                {
                    // The URL's text and the checksum are already in the key; the bytes behind the URL are only
                    // known when --checksum pins them.
                    reason ??= copy.Checksum is null ? $"ADD of '{source}' has no --checksum, so its content is unknown until downloaded; add --checksum=sha256:... to cache it" : null;
                }
                else
                {
                    local.Add(source);
                }
            }

            if (local.Count > 0)
            {
                AddEntries(w, (resolver ?? Context).Select(local, copy.Exclude, copy.Instruction));
            }

            return reason;
        }

        private string? Workdir(CacheKeyWriter w, WorkdirPayload workdir)
        {
            w.Add("path", workdir.Path).Add("user", workdir.User);
            _inputs?.Setting("user", workdir.User);
            return null;
        }

        private void AddEntries(CacheKeyWriter w, IReadOnlyList<ContextEntry> entries)
        {
            if (_inputs is { } inputs)
            {
                _filesRecorded += inputs.Files(entries, Math.Max(0, inputsOptions!.MaxFiles - _filesRecorded));
            }

            w.Add("entries", entries.Count);
            foreach (var e in entries)
            {
                // The context tar stores every owner as 0:0, so uid and gid are constants today; they stay in the
                // format so a context that keeps owners needs no new version.
                w.Add("path", e.Path)
                    .Add("type", e.Type.ToString())
                    .Add("mode", e.Mode)
                    .Add("uid", 0)
                    .Add("gid", 0)
                    .Add("size", e.Size)
                    .Add("sha256", e.Sha256)
                    .Add("link", e.LinkTarget);
            }
        }

        private (string Key, string? NotCacheable) FromKey(BuildStage stage, string from)
        {
            var named = graph.Stages.FirstOrDefault(s => s.Index < stage.Index && string.Equals(s.Name, from, StringComparison.OrdinalIgnoreCase));
            var index = named?.Index;
            if (index is null && int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n < stage.Index)
            {
                index = n;
            }

            if (index is { } i)
            {
                var key = StageKey(i);
                return (key.FinalKey, key.Cacheable ? null : $"--mount from stage {i} is not cacheable: {key.NotCacheableReason}");
            }

            var (digest, pinned) = Image(from, stage.Platform);
            return (stage.Platform + "@" + digest, pinned ? null : Unpinned(from));
        }

        /// <summary>What a stage starts from, for <see cref="StepKeyInputs.BaseReference"/> and <see cref="StepKeyInputs.BaseDigest"/>.</summary>
        private (string Reference, string Digest) BaseOf(BuildStage stage) => stage.BaseKind switch
        {
            StageBaseKind.Scratch => ("scratch", string.Empty),
            StageBaseKind.Stage => (StageName(stage.BaseStage!.Value), StageKey(stage.BaseStage!.Value).FinalKey),
            _ => (stage.BaseImage ?? string.Empty, Image(stage.BaseImage ?? string.Empty, stage.Platform).Digest),
        };

        private bool RootsAtScratch(BuildStage stage)
        {
            while (stage.BaseKind == StageBaseKind.Stage)
            {
                stage = graph.Stages[stage.BaseStage!.Value];
            }

            return stage.BaseKind == StageBaseKind.Scratch;
        }

        private string StageName(int index) => graph.Stages[index].Name is { } name ? $"stage {name}" : $"stage {index}";

        private StageCacheKey StageKey(int index) =>
            _stages.TryGetValue(index, out var key)
                ? key
                : throw new InvalidOperationException($"Stage {index} is used before it was planned; the graph must list dependencies first.");

        private (string Digest, bool Pinned) Image(string reference, string platform)
        {
            var at = platform + " " + reference;
            if (!_images.TryGetValue(at, out var digest))
            {
                digest = resolve(reference, platform) ?? string.Empty;
                _images[at] = digest;
            }

            return (digest, Digest.TryParse(digest, out _));
        }

        private static string Unpinned(string image) =>
            $"image '{image}' is not pinned to a manifest digest (unpinned): a tag can move, so the key may not describe its content";

        /// <summary>Splits a <c>--mount</c> value (<c>type=bind,from=x,source=/a</c>) into lower-case keys and values.</summary>
        private static Dictionary<string, string> ParseMount(string mount)
        {
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var part in mount.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var eq = part.IndexOf('=', StringComparison.Ordinal);
                var name = (eq < 0 ? part : part[..eq]).ToLowerInvariant();
                fields[name] = eq < 0 ? string.Empty : part[(eq + 1)..].Trim('"');
            }

            return fields;
        }
    }
}

/// <summary>Collects one step's <see cref="StepKeyInputs"/> while <see cref="CacheKeyPlanner"/> writes its key.</summary>
internal sealed class InputsRecorder(KeyInputsOptions options, BuildStep step)
{
    private readonly Dictionary<string, string> _settings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _args = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);
    private readonly System.Security.Cryptography.IncrementalHash _allFiles = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
    private int _fileCount;
    private bool _envSeen;

    private KeyInputDigester Digester => options.Digester;

    public void Setting(string name, string? value) => _settings[name] = Digester.Value(name, value);

    public void Setting(string name, IEnumerable<string> values) => Setting(name, string.Join('\0', values));

    public void Source(string name, string keyOrDigest) => _sources[name] = keyOrDigest;

    public void Run(RunPayload run)
    {
        Setting("command", run.Argv);
        Setting("user", run.User);
        Setting("workdir", run.Workdir);
        Setting("network", run.Network);
        Setting("security", run.Security);
        Setting("mounts", run.Mounts);
        Setting("heredocs", run.Files.Select(f => f.Name + "\0" + f.FileDescriptor.ToString(CultureInfo.InvariantCulture) + "\0" + f.Expand + "\0" + f.Content));
        var args = new HashSet<string>(step.UsedArgs, StringComparer.Ordinal);
        foreach (var pair in run.Env)
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? string.Empty : pair[(eq + 1)..];
            (args.Contains(name) ? _args : _env)[name] = Digester.Value(name, value);
        }

        _envSeen = true;
    }

    public void Copy(CopyPayload copy)
    {
        Setting("workdir", copy.Workdir);
        Setting("chown", copy.Chown);
        Setting("chmod", copy.Chmod);
        Setting("flags", [copy.Link.ToString(), copy.Parents.ToString(), string.Join(',', copy.Exclude), copy.Checksum ?? string.Empty, copy.KeepGitDir.ToString(), copy.Unpack?.ToString() ?? string.Empty]);
        Setting("heredocs", copy.InlineFiles.Select(f => f.Name + "\0" + f.Expand + "\0" + f.Content));
    }

    /// <summary>Records what the key takes of each entry; returns how many were recorded by path (at most <paramref name="budget"/>).</summary>
    public int Files(IReadOnlyList<ContextEntry> entries, int budget)
    {
        var recorded = 0;
        foreach (var e in entries)
        {
            var digest = KeyInputDigester.Plain(string.Join('\0', e.Type.ToString(), e.Mode.ToString(CultureInfo.InvariantCulture), e.Size.ToString(CultureInfo.InvariantCulture), e.Sha256 ?? string.Empty, e.LinkTarget ?? string.Empty))[..16];
            _allFiles.AppendData(System.Text.Encoding.UTF8.GetBytes(e.Path + "\0" + digest + "\n"));
            _fileCount++;
            if (_files.Count < options.MaxFilesPerStep && recorded < budget && _files.TryAdd(e.Path, digest))
            {
                recorded++;
            }
        }

        return recorded;
    }

    public StepKeyInputs Finish(BuildStep current, int stageIndex, string key, string parent, bool parentIsBase, string baseReference, string baseDigest)
    {
        if (!_envSeen)
        {
            // Outside RUN an ARG reaches the key only through the words it expands in; the value given on the command
            // line (or the default, when none was) is what can have changed.
            foreach (var name in current.UsedArgs)
            {
                _args[name] = Digester.Value(name, options.BuildArgs.TryGetValue(name, out var value) ? value : null);
            }
        }

        var files = Convert.ToHexStringLower(_allFiles.GetHashAndReset())[..32];
        _allFiles.Dispose();
        return new StepKeyInputs
        {
            StepId = current.Id,
            StageIndex = stageIndex,
            Instruction = current.Instruction,
            Key = key,
            ParentKey = parent,
            ParentIsBase = parentIsBase,
            BaseReference = baseReference,
            BaseDigest = baseDigest,
            Text = Digester.Value("text", current.Text),
            Settings = _settings,
            Sources = _sources,
            Files = _files,
            FileCount = _fileCount,
            FilesDigest = _fileCount == 0 ? string.Empty : files,
            Args = _args,
            Env = _env,
        };
    }
}
