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

    public string Platform { get; init; } = "linux/amd64";

    public string? Progress { get; init; }

    /// <summary><c>--dry-run</c>: say which steps would run and why, build nothing.</summary>
    public bool DryRun { get; init; }

    /// <summary>The coordinator's HTTP address (<c>--farm</c>, else <c>FARM_HOST</c>); null runs the embedded farm.</summary>
    public string? FarmUrl { get; init; }

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
    };
}

/// <summary>The flags <c>farm build</c> and <c>farm submit</c> share, docker buildx's names.</summary>
internal sealed class BuildOptions
{
    public Argument<string> Context { get; } = new("CONTEXT") { Description = "The build context directory." };

    public Option<string> File { get; } = new("--file", "-f") { Description = "The Dockerfile (default: CONTEXT/Dockerfile)." };

    public Option<string[]> Tags { get; } = new("--tag", "-t") { Description = "Name the image NAME[:TAG] (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> BuildArgs { get; } = new("--build-arg") { Description = "A build-time variable NAME=value (NAME alone takes it from the environment).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> Labels { get; } = new("--label") { Description = "Add a label KEY=value to the image (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string> Target { get; } = new("--target") { Description = "The stage to build (default: the last one)." };

    public Option<bool> NoCache { get; } = new("--no-cache") { Description = "Run every step again (results are still cached)." };

    public Option<bool> Pull { get; } = new("--pull") { Description = "Pull base images again even when they are local." };

    public Option<bool> Push { get; } = new("--push") { Description = "Push the image to every -t name. With --farm, your credentials for those registries (farm login / docker login), and no others, go with the build over HTTPS or to loopback; FARM_PUSH_CREDENTIALS=0 keeps them back." };

    public Option<string[]> Allow { get; } = new("--allow") { Description = "Allow an extra privileged entitlement: network.host (RUN --network=host), where the farm grants it.", AllowMultipleArgumentsPerToken = false };

    public Option<string> Output { get; } = new("--output", "-o") { Description = "Export: type=oci|docker|local,dest=PATH (buildx's CSV form)." };

    public Option<string> Platform { get; } = new("--platform") { Description = "The target platform; only linux/amd64." };

    public Option<string> Progress { get; } = new("--progress") { Description = "auto, tty, plain or rawjson (one JSON object per event)." };

    public Option<string> Farm { get; } = new("--farm") { Description = "Build on the coordinator at this HTTP address (default: $FARM_HOST; none: the embedded farm)." };

    /// <summary>Only <c>farm build</c> takes it (<see cref="BuildCommand"/> adds it).</summary>
    public Option<bool> DryRun { get; } = new("--dry-run") { Description = "Say which steps would run and why (against the previous build of this Dockerfile and target); build, push and name nothing." };

    public void AddTo(Command command)
    {
        command.Arguments.Add(Context);
        foreach (var option in new Option[] { File, Tags, BuildArgs, Labels, Target, NoCache, Pull, Push, Allow, Output, Platform, Progress, Farm })
        {
            command.Options.Add(option);
        }
    }

    /// <exception cref="InvalidCliArgumentException">A flag's value is malformed (FARM5010).</exception>
    public BuildSettings Read(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var context = parse.GetValue(Context)!;
        var platform = parse.GetValue(Platform) ?? "linux/amd64";
        if (platform is not ("linux/amd64" or "linux/x86_64" or "amd64"))
        {
            throw new InvalidCliArgumentException($"--platform {platform} is not supported: Farm builds linux/amd64 images only");
        }

        var output = parse.GetValue(Output);
        var farm = parse.GetValue(Farm) is { Length: > 0 } f ? f : Environment.GetEnvironmentVariable("FARM_HOST") is { Length: > 0 } h ? h : null;
        return new BuildSettings
        {
            ContextDirectory = context,
            DockerfilePath = parse.GetValue(File) ?? Path.Combine(context, "Dockerfile"),
            Tags = parse.GetValue(Tags) ?? [],
            BuildArgs = Pairs(parse.GetValue(BuildArgs), "--build-arg", fromEnvironment: true),
            Labels = Pairs(parse.GetValue(Labels), "--label", fromEnvironment: false),
            Target = parse.GetValue(Target),
            NoCache = parse.GetValue(NoCache),
            Pull = parse.GetValue(Pull),
            Push = parse.GetValue(Push),
            Entitlements = ReadEntitlements(parse.GetValue(Allow)),
            Output = output is null ? null : OutputSpec.Parse(output),
            Platform = "linux/amd64",
            Progress = parse.GetValue(Progress),
            DryRun = parse.GetValue(DryRun),
            FarmUrl = farm?.TrimEnd('/'),
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
