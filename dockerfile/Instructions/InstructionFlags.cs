namespace Farm.Dockerfile.Instructions;

internal enum FlagKind
{
    Bool,
    String,
    StringList,
}

/// <summary>The flags of one instruction, checked against what the instruction accepts (BuildKit's BFlags rules).</summary>
internal sealed class InstructionFlags
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    private InstructionFlags()
    {
    }

    /// <summary>Parses <c>--name=value</c> / <c>--name</c> words; calls <paramref name="fail"/> (which throws) on a bad one.</summary>
    public static InstructionFlags Parse(
        IReadOnlyList<string> words,
        string keyword,
        IReadOnlyDictionary<string, FlagKind> allowed,
        Func<string, string, string, Exception> fail)
    {
        var flags = new InstructionFlags();
        foreach (var word in words)
        {
            var body = word.StartsWith("--", StringComparison.Ordinal) ? word[2..] : word;
            var eq = body.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? body : body[..eq];
            var value = eq < 0 ? null : body[(eq + 1)..];
            if (!allowed.TryGetValue(name, out var kind))
            {
                var accepted = allowed.Count == 0
                    ? $"{keyword} takes no flags; remove it"
                    : $"{keyword} accepts {string.Join(", ", allowed.Keys.Order(StringComparer.Ordinal).Select(k => "--" + k))}";
                throw fail(Parsing.DockerfileErrorCodes.UnknownFlag, word, $"unknown flag --{name} for {keyword}; {accepted}");
            }

            switch (kind)
            {
                case FlagKind.Bool:
                    if (value is not null && !bool.TryParse(value, out _))
                    {
                        throw fail(Parsing.DockerfileErrorCodes.InvalidFlag, word, $"--{name} is a switch: write --{name}, --{name}=true or --{name}=false (got '{value}')");
                    }

                    value ??= "true";
                    break;
                case FlagKind.String or FlagKind.StringList when value is null:
                    throw fail(Parsing.DockerfileErrorCodes.InvalidFlag, word, $"--{name} needs a value: write --{name}=<value>");
            }

            if (!flags._values.TryGetValue(name, out var list))
            {
                flags._values[name] = list = [];
            }
            else if (kind != FlagKind.StringList)
            {
                throw fail(Parsing.DockerfileErrorCodes.InvalidFlag, word, $"--{name} is given twice for {keyword}; keep one");
            }

            list.Add(value!);
        }

        return flags;
    }

    public string? String(string name) => _values.TryGetValue(name, out var v) ? v[0] : null;

    public bool Bool(string name) => _values.TryGetValue(name, out var v) && bool.Parse(v[0]);

    public bool? OptionalBool(string name) => _values.TryGetValue(name, out var v) ? bool.Parse(v[0]) : null;

    public IReadOnlyList<string> List(string name) => _values.TryGetValue(name, out var v) ? v : [];
}
