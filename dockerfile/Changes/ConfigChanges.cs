using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Dockerfile.Expansion;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;
using Farm.Oci;

namespace Farm.Dockerfile.Changes;

/// <summary>
/// The <c>-c CHANGE</c> of <c>farm import</c> and <c>farm commit</c>: each change one Dockerfile instruction, parsed by
/// the Dockerfile parser (so exec and shell forms, quoting, escapes and line continuations are a Dockerfile's), its
/// variables expanded against the config's environment, and applied to an image config as a build would apply it.
/// See <see href="https://docs.docker.com/reference/cli/docker/container/commit/">docker commit --change</see> and
/// <see href="https://docs.docker.com/reference/cli/docker/image/import/">docker import --change</see>.
/// </summary>
public static class ConfigChanges
{
    /// <summary>The instructions a change may be, as docker's.</summary>
    public static IReadOnlyList<string> Supported { get; } =
        ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL"];

    private static readonly ShellWordExpander Expander = new();

    /// <summary>Applies <paramref name="changes"/> to <paramref name="config"/> in order.</summary>
    /// <exception cref="InvalidConfigChangeException">A change does not parse, or is an instruction a change cannot carry.</exception>
    public static void Apply(ImageConfig config, IEnumerable<string> changes)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(changes);
        // As in a build: ENTRYPOINT drops an inherited CMD, not one these changes set before it.
        var cmdSet = false;
        foreach (var change in changes)
        {
            try
            {
                cmdSet |= ApplyOne(config, change, Parse(change), cmdSet);
            }
            catch (FarmException e) when (e is RequiredVariableException or ExpansionSyntaxException or SubstitutionPatternException)
            {
                throw new InvalidConfigChangeException(change, e.Message, e);
            }
        }
    }

    private static Instruction Parse(string change)
    {
        if (string.IsNullOrWhiteSpace(change))
        {
            throw new InvalidConfigChangeException(change, "it is empty; give one instruction, e.g. -c 'CMD [\"sh\"]'");
        }

        IReadOnlyList<Instruction> parsed;
        try
        {
            parsed = DockerfileInstructions.Parse(change, "--change");
        }
        catch (DockerfileSyntaxException e)
        {
            throw new InvalidConfigChangeException(change, e.Problem, e);
        }

        return parsed.Count == 1 ? parsed[0] : throw new InvalidConfigChangeException(change, $"it holds {parsed.Count} instructions; give one per -c");
    }

    /// <summary>Applies one parsed change; true when it set CMD.</summary>
    private static bool ApplyOne(ImageConfig config, string change, Instruction instruction, bool cmdSet)
    {
        // Variables are those of the config's environment; ENV A=1 B=$A sees the A from before the instruction.
        var env = config.Env.Select(e => e.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
        string Expand(string word) => Expander.Expand(word, name => env.TryGetValue(name, out var value) ? value : null).Value;

        switch (instruction)
        {
            case CmdInstruction cmd:
                config.Cmd = Argv(config, change, cmd.Command);
                return true;
            case EntrypointInstruction entrypoint:
                config.Entrypoint = Argv(config, change, entrypoint.Command);
                if (!cmdSet)
                {
                    config.Cmd = null;
                }

                break;
            case EnvInstruction e:
                foreach (var (key, value) in e.Pairs.Select(p => (Expand(p.Key), Expand(p.ValueRaw))).ToList())
                {
                    config.SetEnv(key, value);
                }

                break;
            case LabelInstruction label:
                foreach (var pair in label.Pairs)
                {
                    config.SetLabel(Expand(pair.Key), Expand(pair.ValueRaw));
                }

                break;
            case ExposeInstruction expose:
                foreach (var raw in expose.PortsRaw)
                {
                    var ports = ExposedPorts.Normalize(Expand(raw)) ?? throw new InvalidConfigChangeException(change, $"'{raw}' is not a port; write port[/tcp|udp|sctp] or start-end[/proto], e.g. EXPOSE 80 8000-8002/udp");
                    foreach (var port in ports)
                    {
                        config.AddExposedPort(port);
                    }
                }

                break;
            case VolumeInstruction volume:
                foreach (var volumePath in volume.PathsRaw.Select(Expand))
                {
                    config.AddVolume(volumePath.Length > 0 ? volumePath : throw new InvalidConfigChangeException(change, "a volume path is empty (an unset variable?)"));
                }

                break;
            case UserInstruction user:
                config.User = Expand(user.UserRaw);
                break;
            case WorkdirInstruction workdir:
                // A relative WORKDIR continues the current one, as in a Dockerfile.
                var path = Expand(workdir.PathRaw);
                config.WorkingDir = BuildGraphBuilder.CleanAbsolute(path.StartsWith('/') ? path : (config.WorkingDir ?? "/") + "/" + path);
                break;
            case StopSignalInstruction stop:
                config.StopSignal = Expand(stop.SignalRaw);
                break;
            case OnbuildInstruction onbuild:
                // The trigger is stored as written and runs (expanded) when the image is used as a base.
                var triggers = config.Config["OnBuild"] as JsonArray ?? (JsonArray)(config.Config["OnBuild"] = new JsonArray());
                triggers.Add((JsonNode?)onbuild.TriggerRaw);
                break;
            case RunInstruction or FileTransferInstruction or FromInstruction:
                throw new InvalidConfigChangeException(change, $"{Keyword(instruction)} changes files or builds, which a change to an image's config cannot do");
            default:
                throw new InvalidConfigChangeException(change, $"{Keyword(instruction)} is not an instruction a change can carry");
        }

        return false;
    }

    /// <summary>Exec form as written; shell form through the config's SHELL, else <c>/bin/sh -c</c>, as a build does.</summary>
    /// <remarks>
    /// A Dockerfile runs a broken JSON array (<c>CMD ["x"</c>) as a shell command; a one-line change that starts like
    /// one is refused instead, since it is a typo far more often than a command named <c>[</c>.
    /// </remarks>
    private static List<string> Argv(ImageConfig config, string change, CommandForm form) => form switch
    {
        ExecForm exec => [.. exec.ArgumentsRaw],
        ShellForm shell when shell.CommandRaw.TrimStart().StartsWith('[') =>
            throw new InvalidConfigChangeException(change, "it starts like the exec form but is no JSON array of strings; write [\"executable\", \"param\"] or the shell form without brackets"),
        ShellForm shell => [.. Shell(config), shell.CommandRaw],
        _ => throw new InvalidConfigChangeException(change, $"its command form {form.GetType().Name} is unknown"),
    };

    private static IEnumerable<string> Shell(ImageConfig config) =>
        config.Config["Shell"] is JsonArray { Count: > 0 } shell && shell.All(s => s is JsonValue v && v.TryGetValue<string>(out _))
            ? shell.Select(s => s!.GetValue<string>())
            : ["/bin/sh", "-c"];

    private static string Keyword(Instruction instruction) => instruction.Node.Keyword.ToUpperInvariant();
}
