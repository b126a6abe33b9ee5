using System.Text.Json;

namespace Farm.Oci.Images;

/// <summary>
/// The Dockerfile instructions <c>docker import -c</c> and <c>docker commit -c</c> accept, applied to a config.
/// </summary>
/// <remarks>
/// https://docs.docker.com/reference/cli/docker/image/import/ and the Dockerfile reference for each instruction's
/// forms. Written by hand because the build planner works on a whole Dockerfile with stages and build args,
/// while a change is one instruction without variable expansion.
/// </remarks>
public static class ImageChanges
{
    /// <summary>Applies each change in order; throws <see cref="InvalidChangeException"/> on one Farm does not support.</summary>
    public static void Apply(ImageConfig config, IEnumerable<string> changes)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(changes);
        foreach (var change in changes)
        {
            ApplyOne(config, change);
        }
    }

    private static void ApplyOne(ImageConfig config, string change)
    {
        var text = change.Trim();
        var space = text.IndexOfAny([' ', '\t']);
        if (space < 0)
        {
            throw new InvalidChangeException(change, "an instruction needs arguments");
        }

        var instruction = text[..space].ToUpperInvariant();
        var args = text[(space + 1)..].Trim();
        switch (instruction)
        {
            case "CMD":
                config.Cmd = CommandForm(change, args);
                break;
            case "ENTRYPOINT":
                config.Entrypoint = CommandForm(change, args);
                break;
            case "WORKDIR":
                config.WorkingDir = args;
                break;
            case "USER":
                config.User = args;
                break;
            case "STOPSIGNAL":
                config.StopSignal = args;
                break;
            case "EXPOSE":
                foreach (var port in Words(change, args))
                {
                    config.AddExposedPort(port.Contains('/', StringComparison.Ordinal) ? port : port + "/tcp");
                }

                break;
            case "VOLUME":
                foreach (var path in args.StartsWith('[') ? JsonArray(change, args) : Words(change, args))
                {
                    config.AddVolume(path);
                }

                break;
            case "ENV":
                foreach (var (key, value) in Pairs(change, args))
                {
                    config.SetEnv(key, value);
                }

                break;
            case "LABEL":
                foreach (var (key, value) in Pairs(change, args))
                {
                    config.SetLabel(key, value);
                }

                break;
            default:
                throw new InvalidChangeException(change, $"{instruction} is not an instruction a change can carry");
        }
    }

    /// <summary>Exec form (a JSON array) as is; shell form wrapped in <c>/bin/sh -c</c>, as the Dockerfile reference says.</summary>
    private static List<string> CommandForm(string change, string args) =>
        args.StartsWith('[') ? JsonArray(change, args) : ["/bin/sh", "-c", args];

    private static List<string> JsonArray(string change, string args)
    {
        try
        {
            return JsonSerializer.Deserialize<List<string>>(args) ?? throw new InvalidChangeException(change, "the JSON array is null");
        }
        catch (JsonException e)
        {
            throw new InvalidChangeException(change, $"'{args}' is not a JSON array of strings ({e.Message})");
        }
    }

    /// <summary><c>k=v k2="v 2"</c>, or the legacy <c>ENV key value with spaces</c> form.</summary>
    private static List<(string Key, string Value)> Pairs(string change, string args)
    {
        var words = Words(change, args);
        if (words.Count > 0 && !words[0].Contains('=', StringComparison.Ordinal))
        {
            var space = args.IndexOfAny([' ', '\t']);
            return space < 0
                ? throw new InvalidChangeException(change, $"'{args}' has no value; write key=value")
                : [(args[..space], args[(space + 1)..].Trim())];
        }

        var pairs = new List<(string, string)>();
        foreach (var word in words)
        {
            var eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new InvalidChangeException(change, $"'{word}' is not key=value");
            }

            pairs.Add((word[..eq], word[(eq + 1)..]));
        }

        return pairs;
    }

    /// <summary>Splits on blanks outside quotes, removing the quotes and backslash escapes, as the Dockerfile word rules do.</summary>
    private static List<string> Words(string change, string args)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        var inWord = false;
        char? quote = null;
        for (var i = 0; i < args.Length; i++)
        {
            var c = args[i];
            if (quote is null && char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }

                continue;
            }

            inWord = true;
            if (c == '\\' && i + 1 < args.Length && quote != '\'')
            {
                current.Append(args[++i]);
            }
            else if (quote is null && c is '"' or '\'')
            {
                quote = c;
            }
            else if (c == quote)
            {
                quote = null;
            }
            else
            {
                current.Append(c);
            }
        }

        if (quote is not null)
        {
            throw new InvalidChangeException(change, $"a {quote} quote is not closed");
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }
}
