using System.Text.Json.Nodes;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;
using Farm.Oci;
using Farm.Oci.Images;

namespace Farm.Worker.Containers;

/// <summary>
/// The <c>farm commit -c</c> changes: each one Dockerfile instruction, parsed by the Dockerfile frontend (so quoting,
/// exec form and line syntax are the Dockerfile's), then applied to the new image's config.
/// See <see href="https://docs.docker.com/reference/cli/docker/container/commit/">docker commit --change</see>.
/// </summary>
public static class ContainerChanges
{
    /// <summary>Applies <paramref name="changes"/> in order.</summary>
    /// <exception cref="InvalidCommitChangeException">A change does not parse or is an instruction a commit cannot carry.</exception>
    public static void Apply(ImageConfig config, IEnumerable<string> changes)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(changes);
        foreach (var change in changes)
        {
            Instruction instruction;
            try
            {
                var parsed = DockerfileInstructions.Parse(change, "--change");
                if (parsed.Count != 1)
                {
                    throw new InvalidCommitChangeException(change, $"it holds {parsed.Count} instructions; give one per -c");
                }

                instruction = parsed[0];
            }
            catch (DockerfileSyntaxException e)
            {
                throw new InvalidCommitChangeException(change, e.Message, e);
            }

            switch (instruction)
            {
                case OnbuildInstruction onbuild:
                    // The trigger is stored as written and runs when the image is used as a base.
                    var triggers = config.Config["OnBuild"] as JsonArray ?? (JsonArray)(config.Config["OnBuild"] = new JsonArray());
                    triggers.Add(onbuild.TriggerRaw);
                    break;
                case CmdInstruction or EntrypointInstruction or EnvInstruction or ExposeInstruction or LabelInstruction
                    or UserInstruction or VolumeInstruction or WorkdirInstruction or StopSignalInstruction:
                    try
                    {
                        // The config edits (quotes, shell form wrapping) are the ones farm import -c applies.
                        ImageChanges.Apply(config, [change]);
                    }
                    catch (InvalidChangeException e)
                    {
                        throw new InvalidCommitChangeException(change, e.Message, e);
                    }

                    break;
                default:
                    throw new InvalidCommitChangeException(change, $"{instruction.Node.Keyword.ToUpperInvariant()} changes files or builds, which a commit cannot do");
            }
        }
    }
}
