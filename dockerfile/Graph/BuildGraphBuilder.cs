using Farm.Contracts;
using Farm.Dockerfile.Expansion;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Graph;

/// <summary>
/// Turns typed instructions into a <see cref="BuildGraph"/> following BuildKit's dockerfile2llb:
/// the global ARG scope for FROM, the per-stage scope where ARG and ENV set variables in order (the
/// last one wins, so an ENV overrides an earlier ARG), and dependencies that may only point back.
/// </summary>
internal sealed partial class BuildGraphBuilder
{
    /// <summary>
    /// How many ports the EXPOSE instructions of one Dockerfile may name in all, a range counting each of its ports:
    /// every distinct port of every protocol (3 × 65,535) fits, but a file of repeated <c>EXPOSE 1-65535</c> lines
    /// (15 bytes, 65,535 ports each) would keep the coordinator planning for hours.
    /// </summary>
    internal const int MaxExposedPorts = 1 << 18;

    /// <summary>
    /// How many stages (FROM lines) one Dockerfile may have: far past any written by hand or generated (hundreds), yet
    /// a bound on what one submission costs the coordinator to plan (a 1 MiB file of <c>FROM a AS b</c> lines has
    /// about 90,000).
    /// </summary>
    internal const int MaxStages = 4096;

    private const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private static readonly HashSet<string> ProxyArgs = new(StringComparer.OrdinalIgnoreCase)
    {
        "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
    };

    private readonly DockerfileAst _ast;
    private readonly BuildGraphOptions _options;
    private readonly string _fileName;
    private readonly ShellWordExpander _expander;

    // Heredoc bodies of COPY/ADD expand like BuildKit's raw expansion: quotes are content, '\' escapes.
    private readonly ShellWordExpander _rawExpander = new('\\') { ProcessQuotes = false };
    private readonly Dictionary<string, string> _globalArgs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _predefinedArgs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consumedArgs = new(StringComparer.Ordinal);

    // Global ARGs each global ARG default used: a FROM that uses IMAGE=alpine:$VERSION consumes VERSION too.
    private readonly Dictionary<string, HashSet<string>> _globalDeps = new(StringComparer.Ordinal);
    private readonly List<BuildWarning> _warnings = [];

    // Ports EXPOSE has named so far, ranges counted port by port (see MaxExposedPorts).
    private long _exposedPorts;

    // Named stages by name (case-insensitive, names are unique): every --from looks a name up here, so a Dockerfile's
    // planning stays linear in its stages rather than scanning them once per COPY.
    private readonly Dictionary<string, StageHeader> _stagesByName = new(StringComparer.OrdinalIgnoreCase);

    public BuildGraphBuilder(DockerfileAst ast, BuildGraphOptions options)
    {
        _ast = ast;
        _options = options;
        _fileName = ast.FileName;
        _expander = new ShellWordExpander(ast.EscapeToken);
    }

    public BuildGraph Build()
    {
        var instructions = DockerfileInstructions.Convert(_ast);
        var (globalArgs, stageInstructions) = Split(instructions);
        InitGlobalScope(globalArgs);

        var headers = stageInstructions.Select((list, index) => Header(index, list)).ToList();
        IndexNames(headers);
        ResolveBases(headers);
        var targetIndex = ResolveTargetIndex(headers);
        var deps = headers.Select(h => CollectDependencies(h, headers)).ToList();
        var reachable = Reachable(targetIndex, headers, deps);

        var finalStates = new StageState?[headers.Count];
        var stages = new List<BuildStage>(headers.Count);
        foreach (var header in headers)
        {
            var stageDeps = deps[header.Index];
            var dependencies = new SortedSet<int>(stageDeps.Stages);
            if (header.BaseStage is { } b)
            {
                dependencies.Add(b);
            }

            if (!reachable.Contains(header.Index))
            {
                // BuildKit never dispatches an unreachable stage, so its words are not even expanded.
                stages.Add(StageRecord(header, dependencies, stageDeps, pruned: true, steps: [], new StageState(), [], resolved: false));
                continue;
            }

            ConsumeGlobal(header.UsedArgs);
            var (state, pending, resolved) = InitialState(header, finalStates);
            var steps = new List<BuildStep>();
            var number = 0;
            // The base's ONBUILD triggers run first, as if written right after FROM; the stage does not keep them.
            foreach (var instruction in Triggers(header, pending).Concat(header.Instructions))
            {
                steps.Add(Plan(header, state, instruction, ++number, headers));
            }

            finalStates[header.Index] = state;

            stages.Add(StageRecord(header, dependencies, stageDeps, pruned: false, steps, state, pending, resolved));
        }

        WarnUnusedBuildArgs();
        return new BuildGraph
        {
            FileName = _fileName,
            Stages = stages,
            TargetIndex = targetIndex,
            GlobalArgs = new SortedDictionary<string, string>(_globalArgs, StringComparer.Ordinal),
            Warnings = _warnings,
        };
    }

    private void ConsumeGlobal(IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            if (_consumedArgs.Add(name) && _globalDeps.TryGetValue(name, out var deps))
            {
                ConsumeGlobal(deps);
            }
        }
    }

    private (List<ArgInstruction> GlobalArgs, List<List<Instruction>> Stages) Split(IReadOnlyList<Instruction> instructions)
    {
        var globals = new List<ArgInstruction>();
        var stages = new List<List<Instruction>>();
        foreach (var instruction in instructions)
        {
            if (instruction is FromInstruction)
            {
                stages.Add([instruction]);
            }
            else if (stages.Count > 0)
            {
                stages[^1].Add(instruction);
            }
            else if (instruction is ArgInstruction arg)
            {
                globals.Add(arg);
            }
            else
            {
                throw Error(BuildGraphErrorCodes.NoStage, instruction.Location,
                    $"{instruction.Node.Keyword.ToUpperInvariant()} comes before the first FROM; only ARG may precede FROM. Add a FROM line above it");
            }
        }

        if (stages.Count > MaxStages)
        {
            throw Error(BuildGraphErrorCodes.TooManyStages, stages[MaxStages][0].Location,
                $"this FROM starts stage {MaxStages + 1}, past the {MaxStages} stages a Dockerfile may have; merge stages or split the build in several");
        }

        if (stages.Count == 0)
        {
            var location = instructions.Count > 0 ? instructions[^1].Location : new SourceLocation(1, 1, 1);
            throw Error(BuildGraphErrorCodes.NoStage, location, "the Dockerfile has no FROM instruction; add one, e.g. FROM alpine or FROM scratch");
        }

        return (globals, stages);
    }

    private void InitGlobalScope(List<ArgInstruction> globalArgs)
    {
        var target = PlatformSpec.TryParse(_options.Platform)
            ?? throw new BuildGraphException(BuildGraphErrorCodes.InvalidPlatform, $"invalid target platform '{_options.Platform}'; write os/arch[/variant], e.g. linux/arm64");
        var build = PlatformSpec.TryParse(_options.BuildPlatform)
            ?? throw new BuildGraphException(BuildGraphErrorCodes.InvalidPlatform, $"invalid build platform '{_options.BuildPlatform}'; write os/arch[/variant], e.g. linux/amd64");
        target.AddArgs(_globalArgs, "TARGET");
        build.AddArgs(_globalArgs, "BUILD");
        _predefinedArgs.UnionWith(_globalArgs.Keys);

        foreach (var instruction in globalArgs)
        {
            foreach (var arg in instruction.Args)
            {
                if (_options.BuildArgs.TryGetValue(arg.Name, out var given))
                {
                    _globalArgs[arg.Name] = given;
                }
                else if (arg.DefaultRaw is not null)
                {
                    var result = ExpandWord(arg.DefaultRaw, instruction.Location, Lookup(_globalArgs));
                    _globalArgs[arg.Name] = result.Value;
                    var deps = new HashSet<string>(result.MatchedNames.Where(n => n != arg.Name), StringComparer.Ordinal);
                    if (result.MatchedNames.Contains(arg.Name) && _globalDeps.TryGetValue(arg.Name, out var previous))
                    {
                        deps.UnionWith(previous);
                    }

                    _globalDeps[arg.Name] = deps;
                }
            }
        }
    }

    private StageHeader Header(int index, List<Instruction> instructions)
    {
        var from = (FromInstruction)instructions[0];
        var lookup = Lookup(_globalArgs);
        var image = ExpandWord(from.ImageRaw, from.Location, lookup);
        if (image.Value.Length == 0)
        {
            throw Error(BuildGraphErrorCodes.EmptyBaseName, from.Location,
                $"the image '{from.ImageRaw}' expands to nothing; declare the ARG before the first FROM with a default, or pass --build-arg");
        }

        var used = new SortedSet<string>(image.MatchedNames, StringComparer.Ordinal);
        string? platform = null;
        if (from.PlatformRaw is not null)
        {
            var expanded = ExpandWord(from.PlatformRaw, from.Location, lookup);
            used.UnionWith(expanded.MatchedNames);
            platform = PlatformSpec.TryParse(expanded.Value)?.ToString()
                ?? throw Error(BuildGraphErrorCodes.InvalidPlatform, from.Location,
                    $"--platform={from.PlatformRaw} expands to '{expanded.Value}', which is not os/arch[/variant]; e.g. --platform=linux/arm64 or --platform=$BUILDPLATFORM");
        }

        return new StageHeader(index, from.StageName, from.Location, image.Value, platform, used.ToList(), instructions.Skip(1).ToList());
    }

    private void IndexNames(List<StageHeader> headers)
    {
        foreach (var header in headers.Where(h => h.Name is not null))
        {
            if (_stagesByName.TryGetValue(header.Name!, out var first))
            {
                throw Error(BuildGraphErrorCodes.DuplicateStageName, header.Location,
                    $"duplicate stage name '{header.Name}', first defined at line {first.Location.StartLine}; rename one of the stages");
            }

            _stagesByName[header.Name!] = header;
        }
    }

    private void ResolveBases(List<StageHeader> headers)
    {
        // FROM sees only the stages above it: a later (or its own) name is an image reference.
        var byName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < headers.Count; i++)
        {
            var header = headers[i];
            if (byName.TryGetValue(header.Image, out var baseIndex))
            {
                header.BaseStage = baseIndex;
            }
            else if (_options.NamedDirectories.Contains(header.Image))
            {
                throw Error(FarmErrorCodes.NamedContextUnusable, header.Location,
                    $"FROM {header.Image} names the directory build context '{header.Image}' (--build-context); FROM needs an image: give that context as docker-image://REF or oci-layout://PATH, or COPY --from={header.Image} into a stage");
            }
            else if (NamedImage(header.Image) is { } named)
            {
                // buildx's --build-context NAME=docker-image://REF: FROM NAME builds on REF.
                header = headers[i] = header with { Image = named };
                if (header.Name is not null)
                {
                    _stagesByName[header.Name] = header;
                }
            }

            if (header.Name is not null)
            {
                byName[header.Name] = header.Index;
            }
        }
    }

    private int ResolveTargetIndex(List<StageHeader> headers)
    {
        if (string.IsNullOrEmpty(_options.Target))
        {
            return headers.Count - 1;
        }

        if (!_stagesByName.TryGetValue(_options.Target, out var match))
        {
            var names = headers.Where(h => h.Name is not null).Select(h => h.Name!).ToList();
            var list = names.Count == 0 ? "the Dockerfile has no named stage (name one with FROM … AS <name>)" : "stages are: " + string.Join(", ", names);
            throw new BuildGraphException(BuildGraphErrorCodes.UnknownTarget,
                $"target stage '{_options.Target}' could not be found in {_fileName}; {list}");
        }

        return match.Index;
    }
}
