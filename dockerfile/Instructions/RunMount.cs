using System.Globalization;

namespace Farm.Dockerfile.Instructions;

/// <summary>The kinds of <c>RUN --mount</c>.</summary>
public enum RunMountType
{
    /// <summary>Files of a stage, an image or the context, read-only unless <c>rw</c> (and then the writes are discarded).</summary>
    Bind,

    /// <summary>A directory kept by the farm across builds (package managers' caches); never part of a layer or key.</summary>
    Cache,

    /// <summary>An empty tmpfs, gone after the step.</summary>
    Tmpfs,

    /// <summary>A secret of the build (<c>farm build --secret</c>) as a file on a tmpfs, or as an environment variable.</summary>
    Secret,

    /// <summary>The client's SSH agent socket (<c>farm build --ssh</c>).</summary>
    Ssh,
}

/// <summary>How concurrent users of one cache mount meet (BuildKit's <c>sharing</c>).</summary>
public enum CacheSharing
{
    /// <summary>Every user writes the same directory at once (the default).</summary>
    Shared,

    /// <summary>A user that finds the directory in use gets a copy of its own.</summary>
    Private,

    /// <summary>One user at a time; others wait.</summary>
    Locked,
}

/// <summary>
/// One <c>RUN --mount=...</c> value, parsed as BuildKit parses it: comma-separated <c>key=value</c> fields, with the
/// defaults the Dockerfile reference gives per type.
/// See <see href="https://docs.docker.com/reference/dockerfile/#run---mount">Dockerfile reference: RUN --mount</see>.
/// </summary>
public sealed record RunMount
{
    /// <summary>The default directory of secret files: <c>/run/secrets/ID</c>.</summary>
    public const string SecretsDirectory = "/run/secrets";

    /// <summary>The mount type; <see cref="RunMountType.Bind"/> when not given.</summary>
    public RunMountType Type { get; init; } = RunMountType.Bind;

    /// <summary>The absolute or workdir-relative path in the container; null for a secret given only as <see cref="Env"/>.</summary>
    public string? Target { get; init; }

    /// <summary>Path in <see cref="From"/> (or the context) for bind and cache; null means its root.</summary>
    public string? Source { get; init; }

    /// <summary>A stage name or an image for bind (and the seed of a cache); null means the build context.</summary>
    public string? From { get; init; }

    /// <summary>The cache id (default: the target), the secret id or the ssh id (default <c>default</c>).</summary>
    public string? Id { get; init; }

    /// <summary>Mounted read-only: the default for bind, <c>ro</c> for cache.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>How concurrent users of a cache mount meet.</summary>
    public CacheSharing Sharing { get; init; } = CacheSharing.Shared;

    /// <summary>File mode: of a new cache directory (default 0755), of a secret file (0400) or of the ssh socket (0600).</summary>
    public int? Mode { get; init; }

    /// <summary>Owner of a new cache directory, a secret file or the ssh socket (default 0).</summary>
    public int? Uid { get; init; }

    /// <summary>Group of a new cache directory, a secret file or the ssh socket (default 0).</summary>
    public int? Gid { get; init; }

    /// <summary>For a secret: the environment variable to set to its value.</summary>
    public string? Env { get; init; }

    /// <summary>For a secret or ssh: fail the step when the build lacks it (otherwise the mount is left out).</summary>
    public bool Required { get; init; }

    /// <summary>For tmpfs: its size in bytes; null is the kernel's default (half the memory).</summary>
    public long? SizeBytes { get; init; }

    /// <summary>The cache id, or the secret or ssh id, after defaults.</summary>
    public string EffectiveId => Type switch
    {
        RunMountType.Cache => Id ?? Target ?? string.Empty,
        RunMountType.Secret => Id ?? (Target is { } t ? t.TrimEnd('/').Split('/')[^1] : string.Empty),
        RunMountType.Ssh => Id ?? "default",
        _ => Id ?? string.Empty,
    };

    /// <summary>
    /// Parses one <c>--mount</c> value, its variables expanded (<see cref="Expand"/>).
    /// </summary>
    /// <exception cref="RunMountFormatException">The value is malformed; its message says what to write instead.</exception>
    public static RunMount Parse(string value) => Parse(value, deferVariables: false);

    /// <summary>
    /// Checks one <c>--mount</c> value as written, before build args are known: a field whose value holds a variable is
    /// left for after <see cref="Expand"/> (as BuildKit defers it), except <c>from</c>, which BuildKit never expands.
    /// </summary>
    /// <exception cref="RunMountFormatException">The value is malformed, or <c>from</c> holds a variable.</exception>
    public static RunMount ParseDeferred(string value) => Parse(value, deferVariables: true);

    /// <summary>
    /// <paramref name="value"/> with the value of every field but <c>from</c> expanded by <paramref name="expand"/> (the
    /// ARGs and ENV in scope of the RUN), as BuildKit expands mount options (<c>id=$NAME</c>, <c>target=${DIR}/c</c>); a
    /// value that expands to something holding a comma or a quote is written back quoted.
    /// </summary>
    public static string Expand(string value, Func<string, string> expand)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(expand);
        if (!value.Contains('$', StringComparison.Ordinal))
        {
            return value;
        }

        var fields = new List<string>();
        foreach (var raw in SplitFields(value))
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? raw : raw[..eq];
            if (eq < 0 || key.Trim().Equals("from", StringComparison.OrdinalIgnoreCase) || !raw.Contains('$', StringComparison.Ordinal))
            {
                fields.Add(raw);
                continue;
            }

            var expanded = expand(Unquote(raw[(eq + 1)..].Trim()));
            fields.Add(key + "=" + (expanded.Contains(',', StringComparison.Ordinal) || expanded.Contains('"', StringComparison.Ordinal)
                ? "\"" + expanded.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
                : expanded));
        }

        return string.Join(',', fields);
    }

    private static RunMount Parse(string value, bool deferVariables)
    {
        ArgumentNullException.ThrowIfNull(value);
        var fields = new List<(string Key, string? Value, string Raw)>();
        var deferred = false;
        foreach (var raw in SplitFields(value))
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            var key = (eq < 0 ? raw : raw[..eq]).Trim().ToLowerInvariant();
            var v = eq < 0 ? null : Unquote(raw[(eq + 1)..].Trim());
            if (deferVariables && v is not null && v.Contains('$', StringComparison.Ordinal))
            {
                if (key == "from")
                {
                    throw new RunMountFormatException(raw, "'from' does not support variable expansion (as with BuildKit); define a stage FROM the image with the variable (FROM $IMAGE AS tools) and mount from=tools");
                }

                deferred = true;
                continue;
            }

            fields.Add((key, v, raw));
        }

        var typeField = fields.LastOrDefault(f => f.Key == "type");
        var type = typeField.Key is null ? RunMountType.Bind : typeField.Value switch
        {
            "bind" => RunMountType.Bind,
            "cache" => RunMountType.Cache,
            "tmpfs" => RunMountType.Tmpfs,
            "secret" => RunMountType.Secret,
            "ssh" => RunMountType.Ssh,
            _ => throw new RunMountFormatException(typeField.Raw, $"unknown mount type '{typeField.Value}'; use bind, cache, tmpfs, secret or ssh"),
        };

        var mount = new RunMount { Type = type, ReadOnly = type == RunMountType.Bind };
        foreach (var (key, v, raw) in fields)
        {
            mount = key switch
            {
                "type" => mount,
                "target" or "dst" or "destination" => mount with { Target = NonEmpty(raw, v) },
                "source" or "src" when type is RunMountType.Bind or RunMountType.Cache => mount with { Source = NonEmpty(raw, v) },
                "from" when type is RunMountType.Bind or RunMountType.Cache => mount with { From = NonEmpty(raw, v) },
                "id" when type is RunMountType.Cache or RunMountType.Secret or RunMountType.Ssh => mount with { Id = NonEmpty(raw, v) },
                "ro" or "readonly" when type is RunMountType.Bind or RunMountType.Cache => mount with { ReadOnly = Bool(raw, v) },
                "rw" or "readwrite" when type is RunMountType.Bind or RunMountType.Cache => mount with { ReadOnly = !Bool(raw, v) },
                "sharing" when type == RunMountType.Cache => mount with
                {
                    Sharing = v switch
                    {
                        "shared" => CacheSharing.Shared,
                        "private" => CacheSharing.Private,
                        "locked" => CacheSharing.Locked,
                        _ => throw new RunMountFormatException(raw, $"unknown sharing mode '{v}'; use shared, private or locked"),
                    },
                },
                "mode" when type is RunMountType.Cache or RunMountType.Secret or RunMountType.Ssh => mount with { Mode = Octal(raw, v) },
                "uid" when type is RunMountType.Cache or RunMountType.Secret or RunMountType.Ssh => mount with { Uid = Id32(raw, v) },
                "gid" when type is RunMountType.Cache or RunMountType.Secret or RunMountType.Ssh => mount with { Gid = Id32(raw, v) },
                "env" when type == RunMountType.Secret => mount with { Env = NonEmpty(raw, v) },
                "required" when type is RunMountType.Secret or RunMountType.Ssh => mount with { Required = Bool(raw, v) },
                "size" or "tmpfs-size" when type == RunMountType.Tmpfs => mount with { SizeBytes = Size(raw, v) },
                _ => throw new RunMountFormatException(raw, $"'{key}' is not an option of a {type.ToString().ToLowerInvariant()} mount; see the Dockerfile reference, RUN --mount"),
            };
        }

        if (deferred)
        {
            // What a deferred field would have given is not known yet: the whole value is checked once expanded.
            return mount;
        }

        if (mount.Target is null && type is RunMountType.Bind or RunMountType.Cache or RunMountType.Tmpfs)
        {
            throw new RunMountFormatException(value, $"a {type.ToString().ToLowerInvariant()} mount needs a target, e.g. target=/mnt");
        }

        if (type == RunMountType.Secret && mount.Id is null && mount.Target is null)
        {
            throw new RunMountFormatException(value, "a secret mount needs an id (id=NAME, as given to farm build --secret id=NAME,...) or a target");
        }

        if (type == RunMountType.Secret && mount.Target is null && mount.Env is null)
        {
            mount = mount with { Target = SecretsDirectory + "/" + mount.EffectiveId };
        }

        return mount;
    }

    /// <summary>Splits on commas outside double quotes (BuildKit reads the value as one CSV record).</summary>
    private static List<string> SplitFields(string value)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        foreach (var c in value)
        {
            if (c == '"')
            {
                quoted = !quoted;
            }

            if (c == ',' && !quoted)
            {
                fields.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        fields.Add(current.ToString());
        return [.. fields.Where(f => f.Trim().Length > 0)];
    }

    private static string Unquote(string v) => v.Length >= 2 && v[0] == '"' && v[^1] == '"' ? v[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal) : v;

    private static string NonEmpty(string raw, string? v) =>
        string.IsNullOrEmpty(v) ? throw new RunMountFormatException(raw, $"'{raw}' needs a value") : v;

    private static bool Bool(string raw, string? v) => v switch
    {
        null or "true" or "1" => true,
        "false" or "0" => false,
        _ => throw new RunMountFormatException(raw, $"'{raw}' takes true or false"),
    };

    private static int Octal(string raw, string? v)
    {
        try
        {
            var mode = System.Convert.ToInt32(NonEmpty(raw, v), 8);
            return mode is >= 0 and <= 0xFFF ? mode : throw new FormatException();
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            throw new RunMountFormatException(raw, $"'{raw}' is not an octal file mode, e.g. mode=0755");
        }
    }

    private static int Id32(string raw, string? v) =>
        int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new RunMountFormatException(raw, $"'{raw}' is not a numeric id, e.g. uid=1000");

    private static long Size(string raw, string? v)
    {
        var text = NonEmpty(raw, v).Trim().ToLowerInvariant();
        var digits = text.TakeWhile(char.IsAsciiDigit).Count();
        var unit = text[digits..].TrimEnd('b', 'i');
        long factor = unit switch
        {
            "" => 1,
            "k" => 1L << 10,
            "m" => 1L << 20,
            "g" => 1L << 30,
            _ => 0,
        };
        if (digits == 0 || factor == 0 || !long.TryParse(text[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n == 0)
        {
            throw new RunMountFormatException(raw, $"'{raw}' is not a size, e.g. size=64m (bytes, or k, m, g: binary units)");
        }

        return n * factor;
    }
}

/// <summary>A <c>--mount</c> value that does not parse; the instruction layer turns it into FARM1012 with its location.</summary>
public sealed class RunMountFormatException(string field, string problem) : FormatException(problem)
{
    /// <summary>The field (or whole value) to point at in the source.</summary>
    public string Field { get; } = field;
}
