using System.Globalization;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Graph;

internal sealed partial class BuildGraphBuilder
{
    private StageDependencies CollectDependencies(StageHeader header, List<StageHeader> headers)
    {
        var result = new StageDependencies();
        foreach (var instruction in header.Instructions)
        {
            switch (instruction)
            {
                case CopyInstruction { FromRaw: { } from } copy:
                    Record(result, ResolveCopyFrom(from, header, copy.Location, headers));
                    break;
                case RunInstruction run:
                    foreach (var mount in run.MountsRaw)
                    {
                        if (MountFrom(mount) is { } mountFrom)
                        {
                            // BuildKit looks a mount's from= up by stage name only; anything else is an image.
                            Record(result, !_stagesByName.TryGetValue(mountFrom, out var stage)
                                ? new CopySource(CopySourceKind.Image, Image: NamedImage(mountFrom) ?? mountFrom)
                                : CheckStageReference(stage.Index, mountFrom, header, run.Location));
                        }
                    }

                    break;
            }
        }

        return result;
    }

    private static void Record(StageDependencies result, CopySource source)
    {
        if (source.Kind == CopySourceKind.Stage)
        {
            result.Stages.Add(source.Stage!.Value);
        }
        else if (source.Kind == CopySourceKind.Image && !result.Images.Contains(source.Image!, StringComparer.Ordinal))
        {
            result.Images.Add(source.Image!);
        }
    }

    /// <summary>BuildKit's rules for <c>COPY --from</c>: no variables, an index or a stage name points back, anything else is an image.</summary>
    private CopySource ResolveCopyFrom(string from, StageHeader header, SourceLocation location, List<StageHeader> headers)
    {
        if (!string.Equals(_expander.ProcessWord(from, _ => null), from, StringComparison.Ordinal))
        {
            throw Error(BuildGraphErrorCodes.VariableInFrom, location,
                $"variable expansion is not supported for --from={from}; define a stage with FROM <image-with-$VAR> AS <name> using a global ARG, and copy --from that name");
        }

        if (int.TryParse(from, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var index))
        {
            if (index < 0 || index >= headers.Count)
            {
                throw Error(BuildGraphErrorCodes.InvalidStageIndex, location,
                    $"invalid stage index {from} in --from; the Dockerfile has stages 0 to {headers.Count - 1} and only earlier ones (below {header.Index}) can be copied from");
            }

            return CheckStageReference(index, from, header, location);
        }

        return _stagesByName.TryGetValue(from, out var stage) ? CheckStageReference(stage.Index, from, header, location)
            : _options.NamedDirectories.Contains(from) ? new CopySource(CopySourceKind.Context, ContextName: from)
            : new CopySource(CopySourceKind.Image, Image: NamedImage(from) ?? from);
    }

    /// <summary>The image a named build context (<see cref="BuildGraphOptions.NamedImages"/>) puts in place of <paramref name="name"/>; null when none.</summary>
    private string? NamedImage(string name) =>
        _options.NamedImages.TryGetValue(name, out var image) ? image : null;

    private CopySource CheckStageReference(int index, string written, StageHeader header, SourceLocation location)
    {
        if (index == header.Index)
        {
            throw Error(BuildGraphErrorCodes.SelfReference, location,
                $"circular dependency: stage {header.Display} copies from itself (--from={written}); copy from an earlier stage or split this one in two");
        }

        if (index > header.Index)
        {
            throw Error(BuildGraphErrorCodes.ForwardStageReference, location,
                $"cannot copy from stage '{written}' (stage {index}): it must be defined before the current stage {header.Display}; move it above");
        }

        return new CopySource(CopySourceKind.Stage, Stage: index);
    }

    private static string? MountFrom(string mount)
    {
        foreach (var field in mount.Split(','))
        {
            var eq = field.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && field[..eq].Trim().Equals("from", StringComparison.OrdinalIgnoreCase))
            {
                var value = field[(eq + 1)..].Trim().Trim('"');
                return value.Length == 0 ? null : value;
            }
        }

        return null;
    }

    private static HashSet<int> Reachable(int target, List<StageHeader> headers, List<StageDependencies> deps)
    {
        var seen = new HashSet<int>();
        var pending = new Stack<int>();
        pending.Push(target);
        while (pending.TryPop(out var index))
        {
            if (!seen.Add(index))
            {
                continue;
            }

            if (headers[index].BaseStage is { } b)
            {
                pending.Push(b);
            }

            foreach (var dep in deps[index].Stages)
            {
                pending.Push(dep);
            }
        }

        return seen;
    }

    private void WarnUnusedBuildArgs()
    {
        var unused = _options.BuildArgs.Keys
            .Where(k => !_consumedArgs.Contains(k) && !_predefinedArgs.Contains(k) && !ProxyArgs.Contains(k) && k != SourceDateEpoch.ArgName)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (unused.Count > 0)
        {
            _warnings.Add(new BuildWarning(
                BuildGraphErrorCodes.UnusedBuildArgs,
                $"[Warning] One or more build-args [{string.Join(" ", unused)}] were not consumed",
                unused,
                null));
        }
    }

    private BuildStage StageRecord(
        StageHeader header,
        SortedSet<int> dependencies,
        StageDependencies deps,
        bool pruned,
        List<BuildStep> steps,
        StageState state,
        List<string> pending,
        bool resolved) => new()
        {
            Index = header.Index,
            Name = header.Name,
            Location = header.Location,
            BaseKind = header.BaseStage is not null ? StageBaseKind.Stage
                : header.Image == "scratch" ? StageBaseKind.Scratch
                : StageBaseKind.Image,
            BaseImage = header.BaseStage is null && header.Image != "scratch" ? header.Image : null,
            BaseStage = header.BaseStage,
            Platform = state.Platform ?? header.Platform ?? PlatformSpec.TryParse(_options.Platform)!.Value.ToString(),
            PlatformExplicit = header.Platform is not null,
            UsedArgs = header.UsedArgs,
            Pruned = pruned,
            Dependencies = dependencies.ToList(),
            ImageReferences = deps.Images,
            BaseConfigResolved = resolved,
            PendingOnBuild = pending,
            Steps = steps,
            Config = state.ToConfig(),
        };

    private sealed class StageDependencies
    {
        public SortedSet<int> Stages { get; } = [];

        public List<string> Images { get; } = [];
    }

    private sealed record StageHeader(
        int Index,
        string? Name,
        SourceLocation Location,
        string Image,
        string? Platform,
        IReadOnlyList<string> UsedArgs,
        IReadOnlyList<Instruction> Instructions)
    {
        public int? BaseStage { get; set; }

        public string Display => Name is null ? Index.ToString(CultureInfo.InvariantCulture) : $"'{Name}'";
    }
}
