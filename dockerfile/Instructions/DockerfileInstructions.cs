using System.Globalization;
using System.Text.RegularExpressions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Instructions;

/// <summary>
/// Turns parsed instruction nodes into typed instructions and rejects what BuildKit's instruction
/// layer rejects (unknown instructions and flags, wrong argument counts, SHELL not in JSON form…).
/// Words stay unexpanded.
/// </summary>
public static partial class DockerfileInstructions
{
    private static readonly Dictionary<string, FlagKind> NoFlags = [];

    private static readonly Dictionary<string, FlagKind> FromFlags = new() { ["platform"] = FlagKind.String };

    private static readonly Dictionary<string, FlagKind> RunFlags = new()
    {
        ["mount"] = FlagKind.StringList,
        ["network"] = FlagKind.String,
        ["security"] = FlagKind.String,
        ["device"] = FlagKind.StringList,
    };

    private static readonly Dictionary<string, FlagKind> CopyFlags = new()
    {
        ["from"] = FlagKind.String,
        ["chown"] = FlagKind.String,
        ["chmod"] = FlagKind.String,
        ["link"] = FlagKind.Bool,
        ["parents"] = FlagKind.Bool,
        ["exclude"] = FlagKind.StringList,
    };

    private static readonly Dictionary<string, FlagKind> AddFlags = new()
    {
        ["chown"] = FlagKind.String,
        ["chmod"] = FlagKind.String,
        ["link"] = FlagKind.Bool,
        ["keep-git-dir"] = FlagKind.Bool,
        ["checksum"] = FlagKind.String,
        ["exclude"] = FlagKind.StringList,
        ["unpack"] = FlagKind.Bool,
    };

    private static readonly Dictionary<string, FlagKind> HealthcheckFlags = new()
    {
        ["interval"] = FlagKind.String,
        ["timeout"] = FlagKind.String,
        ["start-period"] = FlagKind.String,
        ["start-interval"] = FlagKind.String,
        ["retries"] = FlagKind.String,
    };

    private static readonly string[] KnownInstructions =
    [
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    ];

    /// <summary>Parses and converts in one step.</summary>
    /// <exception cref="DockerfileSyntaxException">The Dockerfile is malformed.</exception>
    public static IReadOnlyList<Instruction> Parse(string text, string fileName = "Dockerfile") =>
        Convert(DockerfileParser.Parse(text, fileName));

    /// <summary>Converts every instruction of a parsed Dockerfile, in source order.</summary>
    /// <exception cref="DockerfileSyntaxException">An instruction is malformed.</exception>
    public static IReadOnlyList<Instruction> Convert(DockerfileAst ast)
    {
        ArgumentNullException.ThrowIfNull(ast);
        return ast.Instructions.Select(node => Convert(node, ast.FileName)).ToList();
    }

    /// <summary>Converts one instruction node.</summary>
    /// <exception cref="DockerfileSyntaxException">The instruction is malformed.</exception>
    public static Instruction Convert(InstructionNode node, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(fileName);
        return new Converter(node, fileName).Convert();
    }

    [GeneratedRegex(@"^[a-z][a-z0-9\-_.]*$", RegexOptions.CultureInvariant)]
    private static partial Regex StageNameRegex();

    [GeneratedRegex(@"^[0-9]*<<-?(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex HeredocSourceRegex();

    private sealed class Converter(InstructionNode node, string fileName)
    {
        private readonly InstructionNode _node = node;
        private readonly string _fileName = fileName;
        private readonly string _keyword = node.Keyword.ToUpperInvariant();

        private IReadOnlyList<string> Args => _node.Arguments;

        public Instruction Convert() => _node.Command switch
        {
            "from" => From(),
            "run" => Run(),
            "cmd" => new CmdInstruction { Node = _node, Command = WithoutFlags(() => CommandOf(allowEmpty: true)) },
            "entrypoint" => new EntrypointInstruction { Node = _node, Command = WithoutFlags(() => CommandOf(allowEmpty: true)) },
            "shell" => Shell(),
            "env" => new EnvInstruction { Node = _node, Pairs = Pairs() },
            "label" => new LabelInstruction { Node = _node, Pairs = Pairs() },
            "arg" => Arg(),
            "expose" => new ExposeInstruction { Node = _node, PortsRaw = WithoutFlags(() => AtLeastOne("a port, e.g. EXPOSE 8080/tcp")) },
            "volume" => Volume(),
            "user" => new UserInstruction { Node = _node, UserRaw = ExactlyOne("a user, e.g. USER app or USER 1000:1000") },
            "workdir" => new WorkdirInstruction { Node = _node, PathRaw = ExactlyOne("a directory, e.g. WORKDIR /app") },
            "stopsignal" => new StopSignalInstruction { Node = _node, SignalRaw = ExactlyOne("a signal, e.g. STOPSIGNAL SIGTERM") },
            "maintainer" => new MaintainerInstruction { Node = _node, MaintainerRaw = ExactlyOne("a name; better, use LABEL org.opencontainers.image.authors=\"…\"") },
            "onbuild" => Onbuild(),
            "healthcheck" => Healthcheck(),
            "copy" => Copy(),
            "add" => Add(),
            _ => throw Fail(DockerfileErrorCodes.UnknownInstruction, _node.Keyword,
                $"unknown instruction '{_node.Keyword}'; valid instructions are {string.Join(", ", KnownInstructions)}"),
        };

        private FromInstruction From()
        {
            var flags = Flags(FromFlags);
            var ok = Args.Count == 1 || (Args.Count == 3 && Args[1].Equals("AS", StringComparison.OrdinalIgnoreCase));
            if (!ok)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                    "FROM takes an image and an optional stage name: FROM <image> [AS <name>]");
            }

            string? stage = null;
            if (Args.Count == 3)
            {
                stage = Args[2].ToLowerInvariant();
                if (!StageNameRegex().IsMatch(stage))
                {
                    throw Fail(DockerfileErrorCodes.InvalidStageName, Args[2],
                        $"invalid stage name '{Args[2]}'; a stage name starts with a letter and holds only letters, digits, '-', '_' and '.'");
                }
            }

            return new FromInstruction { Node = _node, ImageRaw = Args[0], StageName = stage, PlatformRaw = flags.String("platform") };
        }

        private RunInstruction Run()
        {
            var flags = Flags(RunFlags);
            var network = flags.String("network");
            if (network is not null and not ("default" or "none" or "host"))
            {
                throw Fail(DockerfileErrorCodes.InvalidFlag, "--network",
                    $"unknown network mode '{network}' for RUN --network; use default, none or host");
            }

            var security = flags.String("security");
            if (security is not null and not ("sandbox" or "insecure"))
            {
                throw Fail(DockerfileErrorCodes.InvalidFlag, "--security",
                    $"unknown security mode '{security}' for RUN --security; use sandbox or insecure");
            }

            var mounts = flags.List("mount");
            foreach (var mount in mounts)
            {
                try
                {
                    // Fields holding variables are checked once the graph has expanded them.
                    _ = RunMount.ParseDeferred(mount);
                }
                catch (RunMountFormatException e)
                {
                    throw Fail(DockerfileErrorCodes.InvalidFlag, e.Field, $"invalid --mount={mount}: {e.Message}");
                }
            }

            return new RunInstruction
            {
                Node = _node,
                Command = CommandOf(allowEmpty: false),
                Heredocs = _node.Heredocs,
                MountsRaw = mounts,
                Network = network,
                Security = security,
                DevicesRaw = flags.List("device"),
            };
        }

        private ShellInstruction Shell()
        {
            NoFlagsChecked();
            if (!_node.IsJson)
            {
                throw Fail(DockerfileErrorCodes.JsonRequired, null,
                    "SHELL must be written as a JSON array of strings, e.g. SHELL [\"/bin/bash\", \"-c\"]");
            }

            if (Args.Count == 0)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                    "SHELL needs at least the shell executable, e.g. SHELL [\"/bin/sh\", \"-c\"]");
            }

            return new ShellInstruction { Node = _node, ShellRaw = Args };
        }

        private List<KeyValuePairRaw> Pairs()
        {
            NoFlagsChecked();
            if (Args.Count == 0)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                    $"{_keyword} needs at least one pair: {_keyword} name=value");
            }

            var pairs = new List<KeyValuePairRaw>(Args.Count / 3);
            for (var i = 0; i + 2 < Args.Count; i += 3)
            {
                if (Args[i].Length == 0)
                {
                    throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                        $"{_keyword} has a pair without a name ('={Args[i + 1]}'); write name=value");
                }

                pairs.Add(new KeyValuePairRaw(Args[i], Args[i + 1]));
            }

            return pairs;
        }

        private ArgInstruction Arg()
        {
            NoFlagsChecked();
            if (Args.Count == 0)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null, "ARG needs a name: ARG <name>[=<default>]");
            }

            var args = new List<ArgDeclaration>(Args.Count);
            foreach (var word in Args)
            {
                var eq = word.IndexOf('=', StringComparison.Ordinal);
                var name = eq < 0 ? word : word[..eq];
                if (name.Length == 0)
                {
                    throw Fail(DockerfileErrorCodes.InvalidArguments, word,
                        $"ARG '{word}' has no name; write ARG <name>[=<default>]");
                }

                args.Add(new ArgDeclaration(name, eq < 0 ? null : word[(eq + 1)..]));
            }

            return new ArgInstruction { Node = _node, Args = args };
        }

        private VolumeInstruction Volume()
        {
            var paths = WithoutFlags(() => AtLeastOne("a path, e.g. VOLUME /data"));
            if (paths.Any(p => p.Length == 0))
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null, "VOLUME has an empty path; remove the empty string");
            }

            return new VolumeInstruction { Node = _node, PathsRaw = paths };
        }

        private OnbuildInstruction Onbuild()
        {
            NoFlagsChecked();
            var inner = _node.Inner ?? throw Fail(DockerfileErrorCodes.InvalidOnbuild, null,
                "ONBUILD needs an instruction to run later, e.g. ONBUILD COPY . /app");
            if (inner.Command is "onbuild" or "from" or "maintainer")
            {
                throw Fail(DockerfileErrorCodes.InvalidOnbuild, inner.Keyword,
                    $"ONBUILD cannot trigger {inner.Keyword.ToUpperInvariant()}; only build instructions such as RUN, COPY or ENV can run in a child image");
            }

            return new OnbuildInstruction
            {
                Node = _node,
                Trigger = new Converter(inner, _fileName).Convert(),
                TriggerRaw = _node.ArgumentText,
            };
        }

        private HealthcheckInstruction Healthcheck()
        {
            var flags = Flags(HealthcheckFlags);
            if (Args.Count == 0)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                    "HEALTHCHECK needs NONE or CMD <command>, e.g. HEALTHCHECK CMD curl -f http://localhost/");
            }

            var type = Args[0].ToUpperInvariant();
            if (type == "NONE")
            {
                if (Args.Count > 1)
                {
                    throw Fail(DockerfileErrorCodes.InvalidArguments, null, "HEALTHCHECK NONE takes no arguments; remove what follows NONE");
                }

                return new HealthcheckInstruction { Node = _node, IsNone = true };
            }

            if (type != "CMD")
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, Args[0],
                    $"unknown HEALTHCHECK type '{Args[0]}'; use HEALTHCHECK CMD <command> or HEALTHCHECK NONE");
            }

            if (Args.Count == 1)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                    "HEALTHCHECK CMD needs a command, e.g. HEALTHCHECK CMD curl -f http://localhost/");
            }

            var command = _node.IsJson ? (CommandForm)new ExecForm(Args.Skip(1).ToList()) : new ShellForm(Args[1]);
            return new HealthcheckInstruction
            {
                Node = _node,
                IsNone = false,
                Command = command,
                Interval = Duration(flags, "interval"),
                Timeout = Duration(flags, "timeout"),
                StartPeriod = Duration(flags, "start-period"),
                StartInterval = Duration(flags, "start-interval"),
                Retries = Retries(flags),
            };
        }

        private TimeSpan? Duration(InstructionFlags flags, string name)
        {
            var raw = flags.String(name);
            if (string.IsNullOrEmpty(raw))
            {
                return null;
            }

            if (!GoDuration.TryParse(raw, out var value))
            {
                throw Fail(DockerfileErrorCodes.InvalidHealthcheck, "--" + name,
                    $"invalid duration '{raw}' for HEALTHCHECK --{name}; write a number with a unit, e.g. 30s, 1m30s or 500ms");
            }

            if (value == TimeSpan.Zero)
            {
                return null;
            }

            if (value < TimeSpan.FromMilliseconds(1))
            {
                throw Fail(DockerfileErrorCodes.InvalidHealthcheck, "--" + name,
                    $"HEALTHCHECK --{name}={raw} is less than 1ms; use at least 1ms (or 0 for the default)");
            }

            return value;
        }

        private int? Retries(InstructionFlags flags)
        {
            var raw = flags.String("retries");
            if (string.IsNullOrEmpty(raw))
            {
                return null;
            }

            if (!int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var retries) || retries < 0)
            {
                throw Fail(DockerfileErrorCodes.InvalidHealthcheck, "--retries",
                    $"invalid HEALTHCHECK --retries={raw}; write a whole number of 0 or more");
            }

            return retries;
        }

        private CopyInstruction Copy()
        {
            var flags = Flags(CopyFlags);
            var (sources, contents, dest) = SourcesAndDestination();
            return new CopyInstruction
            {
                Node = _node,
                SourcesRaw = sources,
                SourceContents = contents,
                DestinationRaw = dest,
                ChownRaw = flags.String("chown"),
                ChmodRaw = flags.String("chmod"),
                Link = flags.Bool("link"),
                ExcludeRaw = flags.List("exclude"),
                IsJsonForm = _node.IsJson,
                FromRaw = flags.String("from"),
                Parents = flags.Bool("parents"),
            };
        }

        private AddInstruction Add()
        {
            var flags = Flags(AddFlags);
            var (sources, contents, dest) = SourcesAndDestination();
            return new AddInstruction
            {
                Node = _node,
                SourcesRaw = sources,
                SourceContents = contents,
                DestinationRaw = dest,
                ChownRaw = flags.String("chown"),
                ChmodRaw = flags.String("chmod"),
                Link = flags.Bool("link"),
                ExcludeRaw = flags.List("exclude"),
                IsJsonForm = _node.IsJson,
                ChecksumRaw = flags.String("checksum"),
                KeepGitDir = flags.Bool("keep-git-dir"),
                Unpack = flags.OptionalBool("unpack"),
            };
        }

        private (List<string> Sources, List<Heredoc> Contents, string Destination) SourcesAndDestination()
        {
            if (Args.Count < 2)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null,
                    $"{_keyword} needs at least one source and a destination: {_keyword} <src>... <dest>");
            }

            var sources = new List<string>();
            var contents = new List<Heredoc>();
            foreach (var word in Args.Take(Args.Count - 1))
            {
                var heredoc = _node.IsJson ? null : HeredocFor(word);
                if (heredoc is not null)
                {
                    contents.Add(heredoc);
                }
                else
                {
                    sources.Add(word);
                }
            }

            return (sources, contents, Args[^1]);
        }

        private Heredoc? HeredocFor(string word)
        {
            var match = HeredocSourceRegex().Match(word);
            if (!match.Success)
            {
                return null;
            }

            var name = match.Groups[1].Value.Replace("\"", "", StringComparison.Ordinal).Replace("'", "", StringComparison.Ordinal);
            return _node.Heredocs.FirstOrDefault(h => h.Name == name);
        }

        private T WithoutFlags<T>(Func<T> convert)
        {
            NoFlagsChecked();
            return convert();
        }

        private CommandForm CommandOf(bool allowEmpty)
        {
            var args = Args;
            if (_node.IsJson)
            {
                if (args.Count == 0 && !allowEmpty)
                {
                    throw Fail(DockerfileErrorCodes.InvalidArguments, null, $"{_keyword} has an empty command; give at least the program to run");
                }

                return new ExecForm(args);
            }

            if (args.Count == 0 && !allowEmpty)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null, $"{_keyword} needs a command, e.g. {_keyword} echo hello");
            }

            return new ShellForm(args.Count == 0 ? "" : args[0]);
        }

        private IReadOnlyList<string> AtLeastOne(string what)
        {
            if (Args.Count == 0)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null, $"{_keyword} needs {what}");
            }

            return Args;
        }

        private string ExactlyOne(string what)
        {
            NoFlagsChecked();
            if (Args.Count != 1)
            {
                throw Fail(DockerfileErrorCodes.InvalidArguments, null, $"{_keyword} needs {what}");
            }

            return Args[0];
        }

        private InstructionFlags NoFlagsChecked() => Flags(NoFlags);

        private InstructionFlags Flags(Dictionary<string, FlagKind> allowed) =>
            InstructionFlags.Parse(_node.Flags, _keyword, allowed, (code, word, problem) => Fail(code, word, problem));

        /// <summary>An error located at <paramref name="needle"/> when it can be found in the source, else at the instruction.</summary>
        private DockerfileSyntaxException Fail(string code, string? needle, string problem)
        {
            var (line, column) = (_node.Location.StartLine, _node.Location.StartColumn);
            if (!string.IsNullOrEmpty(needle))
            {
                var index = _node.SourceText.IndexOf(needle, StringComparison.Ordinal);
                if (index >= 0)
                {
                    var before = _node.SourceText.AsSpan(0, index);
                    var newlines = before.Count('\n');
                    line += newlines;
                    column = newlines == 0 ? index + 1 : index - before.LastIndexOf('\n');
                }
            }

            return new DockerfileSyntaxException(code, _fileName, line, column, problem);
        }
    }
}
