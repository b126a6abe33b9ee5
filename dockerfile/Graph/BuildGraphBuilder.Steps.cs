using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Farm.Contracts;
using Farm.Dockerfile.Expansion;
using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Graph;

internal sealed partial class BuildGraphBuilder
{
    private (StageState State, List<string> Pending, bool Resolved) InitialState(StageHeader header, StageState?[] finalStates)
    {
        StageState state;
        var pending = new List<string>();
        var resolved = false;
        if (header.BaseStage is { } parentIndex)
        {
            // BuildKit's init(): the child starts from the parent's state, its ARGs included; ONBUILD
            // triggers of the parent fire in the child instead of being inherited.
            var parent = finalStates[parentIndex]!;
            state = parent.Clone();
            pending.AddRange(parent.OnBuild);
            state.OnBuild.Clear();
            state.Platform = header.Platform ?? parent.Platform;
        }
        else
        {
            state = new StageState { Platform = header.Platform ?? PlatformSpec.TryParse(_options.Platform)!.Value.ToString() };
            if (header.Image != "scratch" && _options.ResolveBaseImage?.Invoke(header.Image, state.Platform) is { } config)
            {
                resolved = true;
                foreach (var entry in config.Env)
                {
                    var eq = entry.IndexOf('=', StringComparison.Ordinal);
                    var (key, value) = eq < 0 ? (entry, string.Empty) : (entry[..eq], entry[(eq + 1)..]);
                    state.SetEnv(key, value);
                }

                if (!string.IsNullOrEmpty(config.WorkingDir))
                {
                    state.Workdir = CleanAbsolute(config.WorkingDir);
                    state.ConfigWorkdir = state.Workdir;
                }

                state.User = string.IsNullOrEmpty(config.User) ? null : config.User;
                state.Shell = config.Shell is { Count: > 0 } ? [.. config.Shell] : null;
                pending.AddRange(config.OnBuild);
            }
        }

        // BuildKit puts PATH in the config of every image that lacks it.
        if (!state.Env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal)))
        {
            state.SetEnv("PATH", DefaultPath);
        }

        return (state, pending, resolved);
    }

    private BuildStep Plan(StageHeader header, StageState state, Instruction instruction, int number, List<StageHeader> headers)
    {
        var used = new SortedSet<string>(StringComparer.Ordinal);
        var keyword = instruction.Node.Keyword.ToUpperInvariant();
        var step = new StepBuilder(header.Index, number, instruction.Location, keyword);

        string Expand(string word)
        {
            var result = ExpandWord(word, instruction.Location, state.Lookup);
            used.UnionWith(result.MatchedNames.Where(state.IsArg));
            return result.Value;
        }

        BuildStep Config(string text, string field, IReadOnlyList<string> values, string? note = null) =>
            step.Build(StepKind.Config, text, used, new ConfigPayload { Field = field, Values = values }, note);

        switch (instruction)
        {
            case RunInstruction run:
                return PlanRun(run, state, step, Expand);

            case FileTransferInstruction copy:
                return PlanCopy(copy, header, state, step, headers, Expand, used);

            case WorkdirInstruction workdir:
            {
                var path = Expand(workdir.PathRaw);
                var resolved = CleanAbsolute(path.StartsWith('/') ? path : state.Workdir + "/" + path);
                state.Workdir = resolved;
                state.ConfigWorkdir = resolved;

                // BuildKit makes the directory (as the current USER) except for "/", which always exists.
                var creates = resolved != "/";
                return step.Build(
                    creates ? StepKind.Layer : StepKind.Config,
                    "WORKDIR " + resolved,
                    used,
                    new WorkdirPayload { Path = resolved, User = state.User },
                    creates ? "layer: the worker creates the directory (mkdir -p) as the current user" : "WORKDIR / creates nothing: no layer");
            }

            case EnvInstruction env:
            {
                // Every value is expanded against the scope before the instruction: ENV A=1 B=$A sees the old A.
                var pairs = env.Pairs.Select(p => (Key: Expand(p.Key), Value: Expand(p.ValueRaw))).ToList();
                foreach (var (key, value) in pairs)
                {
                    state.SetEnv(key, value);
                }

                var values = pairs.Select(p => $"{p.Key}={p.Value}").ToList();
                return Config("ENV " + string.Join(" ", values), "env", values);
            }

            case LabelInstruction label:
            {
                var pairs = label.Pairs.Select(p => (Key: Expand(p.Key), Value: Expand(p.ValueRaw))).ToList();
                foreach (var (key, value) in pairs)
                {
                    state.Labels[key] = value;
                }

                var values = pairs.Select(p => $"{p.Key}={p.Value}").ToList();
                return Config("LABEL " + string.Join(" ", pairs.Select(p => $"{p.Key}={Quote(p.Value)}")), "labels", values);
            }

            case ArgInstruction arg:
                return PlanArg(arg, state, step, used, Expand);

            case CmdInstruction cmd:
            {
                var argv = CommandArgv(cmd.Command, state);
                state.Cmd = argv;
                state.CmdSetInStage = true;
                return Config(instruction.Node.Original, "cmd", argv);
            }

            case EntrypointInstruction entrypoint:
            {
                var argv = CommandArgv(entrypoint.Command, state);
                state.Entrypoint = argv;

                // A new ENTRYPOINT drops a CMD inherited from the base, not one set earlier in this stage.
                if (!state.CmdSetInStage)
                {
                    state.Cmd = null;
                }

                return Config(instruction.Node.Original, "entrypoint", argv);
            }

            case ExposeInstruction expose:
            {
                var ports = new List<string>();
                foreach (var raw in expose.PortsRaw)
                {
                    var spec = Expand(raw);
                    var normalized = NormalizePorts(spec, instruction.Location);
                    _exposedPorts += normalized.Count;
                    if (_exposedPorts > MaxExposedPorts)
                    {
                        throw Error(BuildGraphErrorCodes.InvalidPort, instruction.Location,
                            $"EXPOSE {spec} takes the ports this Dockerfile exposes past {MaxExposedPorts} (a range counts each of its ports); expose each range once");
                    }

                    ports.AddRange(normalized);
                }

                state.Ports.UnionWith(ports);
                return Config("EXPOSE " + string.Join(" ", ports), "exposedPorts", ports);
            }

            case UserInstruction user:
            {
                var value = Expand(user.UserRaw);
                state.User = value;
                return Config("USER " + value, "user", [value]);
            }

            case VolumeInstruction volume:
            {
                var paths = volume.PathsRaw.Select(Expand).ToList();
                if (paths.Any(p => p.Length == 0))
                {
                    throw Error(BuildGraphErrorCodes.EmptyVolume, instruction.Location,
                        "VOLUME specifies an empty path (an unset variable?); give each volume a path, e.g. VOLUME /data");
                }

                foreach (var path in paths.Where(p => !state.Volumes.Contains(p)))
                {
                    state.Volumes.Add(path);
                }

                return Config("VOLUME " + string.Join(" ", paths), "volumes", paths);
            }

            case StopSignalInstruction stop:
            {
                var value = Expand(stop.SignalRaw);
                state.StopSignal = value;
                return Config("STOPSIGNAL " + value, "stopSignal", [value]);
            }

            case HealthcheckInstruction health:
            {
                IReadOnlyList<string> test = health.IsNone ? ["NONE"] : health.Command switch
                {
                    ExecForm exec => ["CMD", .. exec.ArgumentsRaw],
                    ShellForm shell => ["CMD-SHELL", shell.CommandRaw],
                    _ => ["NONE"],
                };
                state.Healthcheck = new HealthcheckConfig
                {
                    Test = test,
                    Interval = health.Interval,
                    Timeout = health.Timeout,
                    StartPeriod = health.StartPeriod,
                    StartInterval = health.StartInterval,
                    Retries = health.Retries,
                };
                return Config(instruction.Node.Original, "healthcheck", test);
            }

            case ShellInstruction shell:
                state.Shell = [.. shell.ShellRaw];
                return Config(instruction.Node.Original, "shell", shell.ShellRaw);

            case OnbuildInstruction onbuild:
                state.OnBuild.Add(onbuild.TriggerRaw);
                return Config("ONBUILD " + onbuild.TriggerRaw, "onBuild", [onbuild.TriggerRaw],
                    "stored in the image config; runs when another build uses this image (or stage) as its base");

            case MaintainerInstruction maintainer:
                state.Author = maintainer.MaintainerRaw;
                return Config(instruction.Node.Original, "author", [maintainer.MaintainerRaw]);

            default:
                throw new InvalidOperationException($"no plan for {instruction.GetType().Name}");
        }
    }

    private BuildStep PlanArg(ArgInstruction arg, StageState state, StepBuilder step, SortedSet<string> used, Func<string, string> expand)
    {
        var parts = new List<string>();
        foreach (var declaration in arg.Args)
        {
            _consumedArgs.Add(declaration.Name);
            string? value;
            if (_options.BuildArgs.TryGetValue(declaration.Name, out var given))
            {
                value = given;
            }
            else if (declaration.DefaultRaw is not null)
            {
                value = expand(declaration.DefaultRaw);
            }
            else
            {
                // A bare ARG re-declares a global one (or an automatic platform arg) inside the stage.
                value = _globalArgs.TryGetValue(declaration.Name, out var global) ? global : null;
            }

            if (value is not null)
            {
                state.SetArg(declaration.Name, value);
                used.Add(declaration.Name);
                parts.Add($"{declaration.Name}={value}");
            }
            else
            {
                parts.Add(declaration.Name);
            }
        }

        return step.Build(StepKind.Config, "ARG " + string.Join(" ", parts), used, new ConfigPayload { Field = "arg", Values = parts },
            "in scope for the steps below, until the end of the stage");
    }

    private BuildStep PlanRun(RunInstruction run, StageState state, StepBuilder step, Func<string, string> expand)
    {
        // BuildKit expands mount options with the ARGs and ENV in scope (id=$NAME, target=${DIR}/c), then checks them.
        var mounts = new List<string>(run.MountsRaw.Count);
        foreach (var raw in run.MountsRaw)
        {
            var expanded = RunMount.Expand(raw, expand);
            try
            {
                _ = RunMount.Parse(expanded);
            }
            catch (RunMountFormatException e)
            {
                throw Error(FarmErrorCodes.InvalidFlag, run.Location, $"invalid --mount={raw} (expanded: {expanded}): {e.Message}", e);
            }

            mounts.Add(expanded);
        }

        IReadOnlyList<string> argv;
        var files = run.Heredocs.Select(h => new InlineFile(h.Name, h.FileDescriptor, h.Expand, h.Content)).ToList();
        string? note = null;
        switch (run.Command)
        {
            case ExecForm exec:
                argv = exec.ArgumentsRaw;
                break;
            case ShellForm shell when files.Count > 0 && LoneHeredoc().IsMatch(shell.CommandRaw.Trim()):
                // RUN <<EOF: a script with a shebang runs as a file; anything else is fed to the shell as the command.
                var script = files[0];
                if (script.Content.StartsWith("#!", StringComparison.Ordinal))
                {
                    argv = [.. state.ShellOrDefault, "/dev/pipes/" + script.Name];
                    note = $"the heredoc is mounted read-only at /dev/pipes/{script.Name} (mode 0755) and executed";
                }
                else
                {
                    argv = [.. state.ShellOrDefault, script.Content];
                }

                break;
            case ShellForm shell when files.Count > 0:
            {
                // Heredocs mixed with a command: hand the shell the whole text and let it read the heredocs.
                var text = new StringBuilder(shell.CommandRaw);
                foreach (var file in files)
                {
                    text.Append('\n').Append(file.Content).Append(file.Name);
                }

                argv = [.. state.ShellOrDefault, text.ToString()];
                break;
            }

            case ShellForm shell:
                argv = [.. state.ShellOrDefault, shell.CommandRaw];
                break;
            default:
                throw new InvalidOperationException("unknown command form");
        }

        var proxy = _options.BuildArgs
            .Where(p => ProxyArgs.Contains(p.Key))
            .OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => $"{p.Key}={p.Value}")
            .ToList();
        var payload = new RunPayload
        {
            Argv = argv,
            Env = state.ScopeEnv(),
            ProxyEnv = proxy,
            User = state.User,
            Workdir = state.Workdir,
            // The build's --network is the default of a RUN that names none; "default" is no choice at all.
            Network = run.Network ?? (_options.RunOptions?.Network is { } network and not "default" ? network : null),
            Security = run.Security,
            Mounts = mounts,
            Files = files,
            ExtraHosts = _options.RunOptions?.ExtraHosts ?? [],
            ShmSizeBytes = _options.RunOptions?.ShmSizeBytes,
            Ulimits = _options.RunOptions?.Ulimits ?? [],
        };

        // Every ARG in scope is part of the RUN environment, so all of them key the step.
        return step.Build(StepKind.Layer, run.Node.Original, state.ArgNames(), payload, note);
    }

    private BuildStep PlanCopy(
        FileTransferInstruction copy,
        StageHeader header,
        StageState state,
        StepBuilder step,
        List<StageHeader> headers,
        Func<string, string> expand,
        SortedSet<string> used)
    {
        var from = copy is CopyInstruction { FromRaw: { } raw }
            ? ResolveCopyFrom(raw, header, copy.Location, headers)
            : new CopySource(CopySourceKind.Context);
        var sources = copy.SourcesRaw.Select(expand).ToList();
        var destination = expand(copy.DestinationRaw);
        var chown = copy.ChownRaw is null ? null : expand(copy.ChownRaw);
        var chmod = copy.ChmodRaw is null ? null : expand(copy.ChmodRaw);
        var exclude = copy.ExcludeRaw.Select(expand).ToList();
        var add = copy as AddInstruction;
        var checksum = add?.ChecksumRaw is null ? null : expand(add.ChecksumRaw);
        var inline = copy.SourceContents.Select(h =>
        {
            var content = h.Content;
            if (h.Expand)
            {
                var result = ExpandWith(_rawExpander, content, copy.Location, state.Lookup);
                used.UnionWith(result.MatchedNames.Where(state.IsArg));
                content = result.Value;
            }

            return new InlineFile(h.Name, h.FileDescriptor, h.Expand, content);
        }).ToList();

        var text = new StringBuilder(step.Keyword);
        void Flag(string name, string? value)
        {
            if (value is not null)
            {
                text.Append(" --").Append(name).Append('=').Append(value);
            }
        }

        Flag("from", (copy as CopyInstruction)?.FromRaw);
        Flag("chown", chown);
        Flag("chmod", chmod);
        Flag("checksum", checksum);
        foreach (var pattern in exclude)
        {
            Flag("exclude", pattern);
        }

        if (copy.Link)
        {
            text.Append(" --link");
        }

        if (copy is CopyInstruction { Parents: true })
        {
            text.Append(" --parents");
        }

        if (add is { KeepGitDir: true })
        {
            text.Append(" --keep-git-dir");
        }

        if (add?.Unpack is { } unpack)
        {
            text.Append(" --unpack=").Append(unpack ? "true" : "false");
        }

        foreach (var source in sources.Concat(inline.Select(f => "<<" + f.Name)).Append(destination))
        {
            text.Append(' ').Append(source);
        }

        var payload = new CopyPayload
        {
            Instruction = step.Keyword,
            From = from,
            Sources = sources,
            Destination = destination,
            Workdir = state.Workdir,
            Chown = chown,
            Chmod = chmod,
            Exclude = exclude,
            Link = copy.Link,
            Parents = copy is CopyInstruction { Parents: true },
            Checksum = checksum,
            KeepGitDir = add?.KeepGitDir ?? false,
            Unpack = add?.Unpack,
            InlineFiles = inline,
        };
        return step.Build(StepKind.Layer, text.ToString(), used, payload, null);
    }

    private static IReadOnlyList<string> CommandArgv(CommandForm form, StageState state) => form switch
    {
        ExecForm exec => exec.ArgumentsRaw,
        ShellForm shell => [.. state.ShellOrDefault, shell.CommandRaw],
        _ => throw new InvalidOperationException("unknown command form"),
    };

    /// <summary>EXPOSE values as Docker's nat.ParsePortSpecs reads them: <c>[ip:][hostPort:]port[-end][/proto]</c>.</summary>
    private IReadOnlyList<string> NormalizePorts(string spec, SourceLocation location) =>
        ExposedPorts.Normalize(spec) ?? throw Error(BuildGraphErrorCodes.InvalidPort, location,
            $"invalid port '{spec}' in EXPOSE; write port[/tcp|udp|sctp] or start-end[/proto] with ports 0-65535, e.g. EXPOSE 80 8000-8002/udp");

    private ExpansionResult ExpandWord(string word, SourceLocation location, Func<string, string?> lookup) =>
        ExpandWith(_expander, word, location, lookup);

    private ExpansionResult ExpandWith(ShellWordExpander expander, string word, SourceLocation location, Func<string, string?> lookup)
    {
        try
        {
            return expander.Expand(word, lookup);
        }
        catch (FarmException e) when (e is RequiredVariableException or ExpansionSyntaxException or SubstitutionPatternException or ExpansionTooLongException)
        {
            throw Error(BuildGraphErrorCodes.ExpansionFailed, location, e.Message, e);
        }
    }

    private static Func<string, string?> Lookup(Dictionary<string, string> variables) =>
        name => variables.TryGetValue(name, out var value) ? value : null;

    /// <summary>Go's path.Clean for an absolute path: no ".", "..", doubled or trailing slashes.</summary>
    internal static string CleanAbsolute(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(part);
        }

        return "/" + string.Join('/', parts);
    }

    private static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private BuildGraphException Error(string code, SourceLocation location, string problem, Exception? inner = null) =>
        new(code, _fileName, location, problem, inner);

    // The whole command is one heredoc marker: RUN <<EOF, RUN <<-"EOF".
    [GeneratedRegex(@"^[0-9]*<<-?\s*(""[^""]+""|'[^']+'|[^\s<>'""]+)$", RegexOptions.CultureInvariant)]
    private static partial Regex LoneHeredoc();

    private sealed class StepBuilder(int stage, int number, SourceLocation location, string keyword)
    {
        public string Keyword { get; } = keyword;

        public BuildStep Build(StepKind kind, string text, IEnumerable<string> used, StepPayload payload, string? note) => new()
        {
            Id = $"s{stage.ToString(CultureInfo.InvariantCulture)}/{number.ToString(CultureInfo.InvariantCulture)}",
            Location = location,
            Instruction = Keyword,
            Kind = kind,
            Text = text,
            UsedArgs = used.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            Note = note,
            Payload = payload,
        };
    }
}
