using System.CommandLine;
using Farm.Oci.Images;
using Farm.Contracts;

namespace Farm.Cli.Build;

/// <summary>What <c>farm build</c> and <c>farm submit</c> were asked to do, parsed and checked.</summary>
internal sealed record BuildSettings
{
    public required string ContextDirectory { get; init; }

    /// <summary>As typed (default CONTEXT/Dockerfile), so error locations can be pasted into an editor.</summary>
    public required string DockerfilePath { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string? Target { get; init; }

    public bool NoCache { get; init; }

    public bool Pull { get; init; }

    public bool Push { get; init; }

    /// <summary><c>--allow</c>: the entitlements the build asks for (<see cref="Contracts.Entitlements"/>).</summary>
    public IReadOnlyList<string> Entitlements { get; init; } = [];

    public OutputSpec? Output { get; init; }

    /// <summary>The first platform of <c>--platform</c> (linux/amd64 without it): what the CLI plans with to check the Dockerfile.</summary>
    public string Platform { get; init; } = "linux/amd64";

    /// <summary>
    /// <c>--platform a,b</c>, normalized, each once; empty for linux/amd64 alone, so such a build is submitted exactly
    /// as one without the flag (and keeps its cache).
    /// </summary>
    public IReadOnlyList<string> Platforms { get; init; } = [];

    public string? Progress { get; init; }

    /// <summary><c>--dry-run</c>: say which steps would run and why, build nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>The coordinator's HTTP address (<c>--farm</c>, else <c>FARM_HOST</c>); null runs the embedded farm.</summary>
    public string? FarmUrl { get; init; }

    /// <summary>
    /// <c>--secret</c> and <c>--ssh</c>, read; null when none. They go with the submission in a header, never in it
    /// (<see cref="ToSubmit"/> leaves them out).
    /// </summary>
    public BuildSecretValues? Secrets { get; init; }

    /// <summary><c>--iidfile</c>: where to write the image id (its config digest) once built.</summary>
    public string? IidFile { get; init; }

    /// <summary><c>--metadata-file</c>: where to write buildx's result metadata as JSON once built.</summary>
    public string? MetadataFile { get; init; }

    /// <summary><c>-q</c>: no progress; standard output gets the image id only.</summary>
    public bool Quiet { get; init; }

    /// <summary>The settings of RUN steps and the named image contexts the submission carries (<see cref="SubmitBuild.Options"/>); null: none.</summary>
    public SubmitBuildOptions? Options { get; init; }

    /// <summary><c>--build-context</c> values as typed; directory and OCI-layout ones become <see cref="Options"/> entries when the build is submitted.</summary>
    public IReadOnlyList<NamedContextSpec> NamedContexts { get; init; } = [];

    /// <summary>The graph options the CLI plans with (to check the Dockerfile and label steps) as the farm will.</summary>
    public Farm.Dockerfile.Graph.BuildGraphOptions GraphOptions() => new()
    {
        BuildArgs = BuildArgs,
        Target = Target,
        Platform = Platform,
        RunOptions = Options,
        // An oci-layout context not loaded yet (a remote farm's) is an image all the same: named here only to label steps.
        NamedImages = NamedContexts.Where(c => c.Kind is NamedContextKind.Image or NamedContextKind.OciLayout)
            .ToDictionary(c => c.Name, c => c.Kind == NamedContextKind.Image ? c.Value : OciLayoutContexts.NamePrefix + "context", StringComparer.Ordinal),
        NamedDirectories = [.. NamedContexts.Where(c => c.Kind == NamedContextKind.Directory).Select(c => c.Name)],
    };

    /// <summary>The submission of these settings for a context already in the farm's cache store.</summary>
    public SubmitBuild ToSubmit(string dockerfile, string contextDigest, string contextIndexDigest) => new()
    {
        BuildId = Guid.NewGuid(),
        Dockerfile = dockerfile,
        DockerfilePath = DockerfilePath,
        ContextDigest = contextDigest,
        ContextIndexDigest = contextIndexDigest,
        BuildArgs = BuildArgs,
        Labels = Labels,
        Target = Target,
        Tags = Tags,
        Push = Push,
        NoCache = NoCache,
        Pull = Pull,
        Entitlements = Entitlements,
        Options = Options,
        Platforms = Platforms,
    };

    /// <summary>
    /// <c>--platform</c>'s value: platforms separated by commas (the flag may be repeated), each <c>os/arch[/variant]</c>
    /// or a bare architecture, normalized as the farm does (<c>x86_64</c> is amd64, <c>arm64/v8</c> is arm64).
    /// </summary>
    /// <exception cref="InvalidCliArgumentException">One is not a platform (FARM5010).</exception>
    public static IReadOnlyList<string> ParsePlatforms(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var platforms = new List<string>();
        foreach (var value in values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)))
        {
            var platform = Oci.Platform.TryParse(value)?.ToString()
                ?? throw new InvalidCliArgumentException($"--platform {value} is not a platform: write os/arch[/variant], several separated by commas, e.g. linux/amd64,linux/arm64");
            if (!platforms.Contains(platform, StringComparer.Ordinal))
            {
                platforms.Add(platform);
            }
        }

        return platforms;
    }
}

/// <summary>The flags <c>farm build</c> and <c>farm submit</c> share, docker buildx's names.</summary>
internal sealed class BuildOptions
{
    public Argument<string> Context { get; } = new("CONTEXT") { Description = "The build context: a directory, a git URL (https://HOST/REPO.git#REF:SUBDIR, git://, git@HOST:REPO.git), an http(s) URL of a tar (or of a Dockerfile), or - (a tar or a Dockerfile on standard input)." };

    public Option<string> File { get; } = new("--file", "-f") { Description = "The Dockerfile (default: CONTEXT/Dockerfile); - reads it from standard input." };

    public Option<string> IidFile { get; } = new("--iidfile") { Description = "Write the image id (sha256:... of its config) to this file." };

    public Option<string> MetadataFile { get; } = new("--metadata-file") { Description = "Write the build result's metadata as JSON to this file (buildx's keys)." };

    public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "Print only the image id on standard output; no progress." };

    public Option<string[]> BuildContexts { get; } = new("--build-context") { Description = "A named context NAME=DIR|docker-image://REF|oci-layout://PATH[@DIGEST] for FROM NAME and COPY --from=NAME (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> AddHosts { get; } = new("--add-host") { Description = "Add HOST:IP to the /etc/hosts of RUN steps (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string> Network { get; } = new("--network") { Description = "The network of RUN steps that name none: default, none or host (host needs --allow network.host)." };

    public Option<string> ShmSize { get; } = new("--shm-size") { Description = "The size of /dev/shm in RUN steps, e.g. 128m (default 64m)." };

    public Option<string[]> CacheFrom { get; } = new("--cache-from") { Description = "Seed the build from a build cache another build exported: type=registry,ref=HOST/REPO:TAG, or the reference alone (repeatable; a missing one is a warning).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> CacheTo { get; } = new("--cache-to") { Description = "Export the build cache once built: type=registry,ref=HOST/REPO:TAG[,mode=min|max][,ignore-error=true] (min: the image's stages; max: every step).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> Ulimits { get; } = new("--ulimit") { Description = "A resource limit of RUN steps, NAME=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> Tags { get; } = new("--tag", "-t") { Description = "Name the image NAME[:TAG] (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> BuildArgs { get; } = new("--build-arg") { Description = "A build-time variable NAME=value (NAME alone takes it from the environment).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> Labels { get; } = new("--label") { Description = "Add a label KEY=value to the image (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string> Target { get; } = new("--target") { Description = "The stage to build (default: the last one)." };

    public Option<bool> NoCache { get; } = new("--no-cache") { Description = "Run every step again (results are still cached)." };

    public Option<bool> Pull { get; } = new("--pull") { Description = "Pull base images again even when they are local." };

    public Option<bool> Push { get; } = new("--push") { Description = "Push the image to every -t name. With --farm, your credentials for those registries (farm login / docker login), and no others, go with the build over HTTPS or to loopback; FARM_PUSH_CREDENTIALS=0 keeps them back." };

    public Option<string[]> Allow { get; } = new("--allow") { Description = "Allow an extra privileged entitlement: network.host (RUN --network=host), where the farm grants it.", AllowMultipleArgumentsPerToken = false };

    public Option<string> Output { get; } = new("--output", "-o") { Description = "Export: type=oci|docker|local,dest=PATH (buildx's CSV form)." };

    public Option<string[]> Platform { get; } = new("--platform") { Description = "The target platforms, os/arch[/variant] separated by commas (default linux/amd64); several make an image index, one image per platform.", AllowMultipleArgumentsPerToken = false };

    public Option<string> Progress { get; } = new("--progress") { Description = "auto, tty, plain or rawjson (one JSON object per event)." };

    public Option<string> Farm { get; } = new("--farm") { Description = "Build on the coordinator at this HTTP address (default: $FARM_HOST; none: the embedded farm)." };

    public Option<string[]> Secret { get; } = new("--secret") { Description = "A secret RUN --mount=type=secret may read: id=ID,src=FILE or id=ID,env=VARIABLE (type=file|env as buildx; repeatable). Never stored by the farm.", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> Ssh { get; } = new("--ssh") { Description = "Forward an SSH agent to RUN --mount=type=ssh: default (SSH_AUTH_SOCK) or ID=SOCKET; the local farm only.", AllowMultipleArgumentsPerToken = false };

    /// <summary>Only <c>farm build</c> takes it (<see cref="BuildCommand"/> adds it).</summary>
    public Option<bool> DryRun { get; } = new("--dry-run") { Description = "Say which steps would run and why (against the previous build of this Dockerfile and target); build, push and name nothing." };

    public void AddTo(Command command)
    {
        command.Arguments.Add(Context);
        foreach (var option in new Option[] { File, Tags, BuildArgs, Labels, Target, NoCache, Pull, Push, Allow, Output, Platform, Progress, Farm, Secret, Ssh, IidFile, MetadataFile, Quiet, BuildContexts, AddHosts, Network, ShmSize, Ulimits, CacheFrom, CacheTo })
        {
            command.Options.Add(option);
        }
    }

    /// <exception cref="InvalidCliArgumentException">A flag's value is malformed (FARM5010).</exception>
    public BuildSettings Read(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var context = parse.GetValue(Context)!;
        var platforms = BuildSettings.ParsePlatforms(parse.GetValue(Platform) ?? []);

        var output = parse.GetValue(Output);
        var network = parse.GetValue(Network) is { } n ? BuildFlags.ParseNetwork(n) : null;
        var entitlements = ReadEntitlements(parse.GetValue(Allow));
        if (network == "host" && !entitlements.Contains(Contracts.Entitlements.NetworkHost))
        {
            // As buildx: --network host asks for the entitlement; the farm still decides whether to grant it.
            entitlements.Add(Contracts.Entitlements.NetworkHost);
        }

        var namedContexts = (parse.GetValue(BuildContexts) ?? []).Select(BuildFlags.ParseBuildContext).ToList();
        if (namedContexts.GroupBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidBuildContextException(twice.Key + "=...", $"the name '{twice.Key}' is given twice");
        }

        var runOptions = new SubmitBuildOptions
        {
            Network = network,
            ExtraHosts = [.. (parse.GetValue(AddHosts) ?? []).Select(BuildFlags.ParseAddHost)],
            ShmSizeBytes = parse.GetValue(ShmSize) is { } shm ? BuildFlags.ParseShmSize(shm) : null,
            Ulimits = [.. (parse.GetValue(Ulimits) ?? []).Select(BuildFlags.ParseUlimit)],
            NamedContexts = [.. namedContexts.Where(c => c.Kind == NamedContextKind.Image).Select(c => new NamedContext { Name = c.Name, Image = c.Value })],
            CacheFrom = [.. (parse.GetValue(CacheFrom) ?? []).Select(v => CacheSpec.ParseImport(v).Format(export: false))],
            CacheTo = [.. (parse.GetValue(CacheTo) ?? []).Select(v => CacheSpec.ParseExport(v).Format(export: true))],
        };
        var dockerfile = parse.GetValue(File);
        var farm = parse.GetValue(Farm) is { Length: > 0 } f ? f : Environment.GetEnvironmentVariable("FARM_HOST") is { Length: > 0 } h ? h : null;
        return new BuildSettings
        {
            ContextDirectory = context,
            DockerfilePath = dockerfile ?? Path.Combine(context, "Dockerfile"),
            Tags = parse.GetValue(Tags) ?? [],
            BuildArgs = Pairs(parse.GetValue(BuildArgs), "--build-arg", fromEnvironment: true),
            Labels = Pairs(parse.GetValue(Labels), "--label", fromEnvironment: false),
            Target = parse.GetValue(Target),
            NoCache = parse.GetValue(NoCache),
            Pull = parse.GetValue(Pull),
            Push = parse.GetValue(Push),
            Entitlements = entitlements,
            Output = output is null ? null : OutputSpec.Parse(output),
            Platform = platforms.Count > 0 ? platforms[0] : FarmPlatforms.Default,
            Platforms = platforms is [FarmPlatforms.Default] ? [] : platforms,
            Progress = parse.GetValue(Progress),
            DryRun = parse.GetValue(DryRun),
            FarmUrl = farm?.TrimEnd('/'),
            Secrets = BuildSecretFlags.Read(parse.GetValue(Secret), parse.GetValue(Ssh)),
            IidFile = parse.GetValue(IidFile),
            MetadataFile = parse.GetValue(MetadataFile),
            Quiet = parse.GetValue(Quiet),
            Options = runOptions.Network is null && runOptions.ExtraHosts.Count == 0 && runOptions.ShmSizeBytes is null && runOptions.Ulimits.Count == 0 && namedContexts.Count == 0 && runOptions.CacheFrom.Count == 0 && runOptions.CacheTo.Count == 0 ? null : runOptions,
            NamedContexts = namedContexts,
        };
    }

    private static List<string> ReadEntitlements(string[]? values)
    {
        var entitlements = new List<string>();
        foreach (var value in (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            var name = value == "network=host" ? Contracts.Entitlements.NetworkHost : value;
            if (name != Contracts.Entitlements.NetworkHost)
            {
                throw new InvalidCliArgumentException($"--allow {value} is not an entitlement Farm knows; use --allow network.host");
            }

            if (!entitlements.Contains(name))
            {
                entitlements.Add(name);
            }
        }

        return entitlements;
    }

    private static Dictionary<string, string> Pairs(string[]? items, string flag, bool fromEnvironment)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items ?? [])
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq == 0 || (eq < 0 && !fromEnvironment))
            {
                throw new InvalidCliArgumentException($"{flag} '{item}' is not KEY=value");
            }

            if (eq > 0)
            {
                pairs[item[..eq]] = item[(eq + 1)..];
            }
            else if (Environment.GetEnvironmentVariable(item) is { } value)
            {
                // docker build --build-arg NAME passes NAME from the environment, or nothing when unset.
                pairs[item] = value;
            }
        }

        return pairs;
    }
}
