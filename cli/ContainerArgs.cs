using Farm.Containers;
using Farm.Contracts;

namespace Farm.Cli;

/// <summary>FARM5050: <c>farm run</c> or <c>farm exec</c> got flags it does not know, or misses a value.</summary>
internal sealed class ContainerUsageException(string command, string problem)
    : FarmException(FarmErrorCodes.ContainerUsage, $"farm {command}: {problem}. See farm {command} --help.");

/// <summary>
/// docker's argument rules for <c>run</c> and <c>exec</c>: flags come first and end at the first word that is not
/// one (the image or container), so everything after it is the container's command, verbatim, even <c>-h</c> or
/// <c>-p</c>. System.CommandLine parses options anywhere on the line, which would steal them; hence by hand.
/// Short boolean flags bundle (<c>-dit</c>); values come as <c>-e K=V</c>, <c>-eK=V</c> or <c>--env=K=V</c>.
/// </summary>
internal sealed class ContainerArgs
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private ContainerArgs(IReadOnlyList<string> positional) => Positional = positional;

    /// <summary>The words from the first non-flag on: IMAGE or CONTAINER, then the command.</summary>
    public IReadOnlyList<string> Positional { get; }

    /// <summary>Whether a boolean flag was given (by its long name).</summary>
    public bool Has(string flag) => _flags.Contains(flag);

    /// <summary>Every value given for a flag (by its long name), in order.</summary>
    public IReadOnlyList<string> All(string flag) => _values.TryGetValue(flag, out var v) ? v : [];

    /// <summary>The last value given for a flag, or null.</summary>
    public string? Last(string flag) => _values.TryGetValue(flag, out var v) ? v[^1] : null;

    /// <summary><paramref name="options"/> with the process flags run and exec share: -e, -w, -u, -t, -i.</summary>
    public T WithProcessOptions<T>(T options)
        where T : ContainerProcessOptions =>
        // A with on the base record clones the derived one, keeping its own members.
        (T)((ContainerProcessOptions)options with
        {
            Env = All("env"),
            WorkingDir = Last("workdir"),
            User = Last("user"),
            Tty = Has("tty"),
            Interactive = Has("interactive"),
        });

    /// <summary>Parses <paramref name="args"/> against the known flags.</summary>
    /// <param name="command">run or exec, for messages.</param>
    /// <param name="args">The words after the command name.</param>
    /// <param name="booleans">Short letter to long name of boolean flags.</param>
    /// <param name="longBooleans">Long names of boolean flags without a short form.</param>
    /// <param name="valued">Short letter (or '\0') and long name of flags taking a value.</param>
    public static ContainerArgs Parse(
        string command,
        IReadOnlyList<string> args,
        IReadOnlyDictionary<char, string> booleans,
        IReadOnlyCollection<string> longBooleans,
        IReadOnlyList<(char Short, string Long)> valued)
    {
        var values = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        for (; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                i++;
                break;
            }

            if (!arg.StartsWith('-') || arg == "-")
            {
                break;
            }

            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                var eq = arg.IndexOf('=', StringComparison.Ordinal);
                var name = eq < 0 ? arg[2..] : arg[2..eq];
                if (longBooleans.Contains(name) || booleans.Values.Contains(name))
                {
                    var value = true;
                    if (eq >= 0 && !bool.TryParse(arg[(eq + 1)..], out value))
                    {
                        throw new ContainerUsageException(command, $"--{name} takes true or false, not '{arg[(eq + 1)..]}'");
                    }

                    if (value)
                    {
                        flags.Add(name);
                    }

                    continue;
                }

                if (!valued.Any(v => v.Long == name))
                {
                    throw new ContainerUsageException(command, $"unknown flag --{name}");
                }

                Add(values, name, eq >= 0 ? arg[(eq + 1)..] : Next(command, args, ref i, arg));
                continue;
            }

            // A bundle of short flags; a valued one takes the rest of the word or the next word.
            for (var j = 1; j < arg.Length; j++)
            {
                var letter = arg[j];
                if (booleans.TryGetValue(letter, out var longName))
                {
                    flags.Add(longName);
                    continue;
                }

                var match = valued.FirstOrDefault(v => v.Short == letter);
                if (match.Long is null)
                {
                    throw new ContainerUsageException(command, $"unknown flag -{letter}");
                }

                var rest = arg[(j + 1)..];
                Add(values, match.Long, rest.Length > 0 ? rest.TrimStart('=') : Next(command, args, ref i, "-" + letter));
                break;
            }
        }

        var parsed = new ContainerArgs([.. args.Skip(i)]);
        foreach (var (k, v) in values)
        {
            parsed._values[k] = v;
        }

        parsed._flags.UnionWith(flags);
        return parsed;
    }

    private static string Next(string command, IReadOnlyList<string> args, ref int i, string flag)
    {
        if (i + 1 >= args.Count)
        {
            throw new ContainerUsageException(command, $"flag {flag} needs a value");
        }

        return args[++i];
    }

    private static void Add(Dictionary<string, List<string>> values, string name, string value)
    {
        if (!values.TryGetValue(name, out var list))
        {
            values[name] = list = [];
        }

        list.Add(value);
    }
}
