using Farm.Contracts;
using Farm.Dockerfile.Instructions;

namespace Farm.Dockerfile.Graph;

internal sealed partial class BuildGraphBuilder
{
    /// <summary>
    /// The ONBUILD triggers of a stage's base as instructions that run right after its FROM, as BuildKit's
    /// dockerfile2llb parses them and puts them before the stage's own commands
    /// (https://docs.docker.com/reference/dockerfile/#onbuild). They are placed at the FROM line, where a user looks
    /// for what the base brought.
    /// </summary>
    /// <exception cref="BuildGraphException">
    /// FARM1340: a trigger does not parse, is FROM, ONBUILD or MAINTAINER (refused as by BuildKit), or reads another
    /// stage or image, which the stage's dependencies (collected from its own lines) would not include.
    /// </exception>
    private List<Instruction> Triggers(StageHeader header, List<string> triggers)
    {
        var instructions = new List<Instruction>(triggers.Count);
        foreach (var trigger in triggers)
        {
            IReadOnlyList<Instruction> parsed;
            try
            {
                parsed = DockerfileInstructions.Parse(trigger, _fileName);
            }
            catch (FarmException e)
            {
                throw Unusable(header, trigger, $"it does not parse ({e.Message})", e);
            }

            if (parsed.Count != 1)
            {
                throw Unusable(header, trigger, "it is not one instruction");
            }

            var instruction = parsed[0];
            var refusal = instruction switch
            {
                FromInstruction or OnbuildInstruction or MaintainerInstruction =>
                    $"{instruction.Node.Keyword.ToUpperInvariant()} cannot run as a trigger",
                CopyInstruction { FromRaw: not null } => "a trigger that copies from another stage or image (COPY --from) is not built yet",
                RunInstruction run when run.MountsRaw.Any(m => m.Contains("from=", StringComparison.OrdinalIgnoreCase)) =>
                    "a trigger that mounts another stage or image (RUN --mount from=) is not built yet",
                _ => null,
            };
            if (refusal is not null)
            {
                throw Unusable(header, trigger, refusal);
            }

            instructions.Add(instruction with { Node = instruction.Node with { Location = header.Location } });
        }

        return instructions;
    }

    private BuildGraphException Unusable(StageHeader header, string trigger, string why, Exception? inner = null) =>
        Error(BuildGraphErrorCodes.OnbuildTriggerUnusable, header.Location,
            $"the base {header.Image} has the ONBUILD trigger '{trigger}', which cannot run here: {why}; build on another base, or write the step in this stage yourself",
            inner);
}
