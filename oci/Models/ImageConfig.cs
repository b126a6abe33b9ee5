using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Oci;

/// <summary>
/// An image configuration, kept as a JSON object so that fields Farm does not model (and fields a future
/// spec adds) survive a read-modify-write. Typed accessors cover what a build changes.
/// </summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/config.md</remarks>
public sealed class ImageConfig
{
    private readonly JsonObject _root;

    private ImageConfig(JsonObject root)
    {
        _root = root;
    }

    /// <summary>A new config for linux/amd64 with an empty rootfs and history.</summary>
    public static ImageConfig CreateEmpty(Platform? platform = null)
    {
        platform ??= Platform.LinuxAmd64;
        var root = new JsonObject
        {
            ["architecture"] = platform.Architecture,
            ["os"] = platform.Os,
            ["config"] = new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray() },
            ["history"] = new JsonArray(),
        };
        if (platform.Variant is not null)
        {
            root["variant"] = platform.Variant;
        }

        return new ImageConfig(root);
    }

    public static ImageConfig Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonNode.Parse(json) is JsonObject root
                ? new ImageConfig(root)
                : throw new InvalidManifestException("The image config is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidManifestException($"The image config is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>A deep copy, so a derived image never changes its base's config.</summary>
    public ImageConfig Clone() => new((JsonObject)_root.DeepClone());

    /// <summary>The canonical bytes: UTF-8 JSON, compact, in field order.</summary>
    public byte[] ToBytes() => OciJson.ToBytes(_root);

    /// <summary>The raw document, for fields without an accessor.</summary>
    public JsonObject Root => _root;

    public string Architecture
    {
        get => (string?)_root["architecture"] ?? "amd64";
        set => _root["architecture"] = value;
    }

    public string Os
    {
        get => (string?)_root["os"] ?? "linux";
        set => _root["os"] = value;
    }

    public DateTimeOffset? Created
    {
        get => _root["created"] is JsonValue v && v.TryGetValue<string>(out var s) && DateTimeOffset.TryParse(s, out var d) ? d : null;
        set => Set(_root, "created", value is null ? null : JsonValue.Create(FormatTime(value.Value)));
    }

    public string? Author
    {
        get => (string?)_root["author"];
        set => Set(_root, "author", value is null ? null : JsonValue.Create(value));
    }

    /// <summary>The execution parameters (<c>config</c> field): Env, Cmd, Entrypoint, WorkingDir and the rest.</summary>
    public JsonObject Config => _root["config"] as JsonObject ?? (JsonObject)(_root["config"] = new JsonObject());

    public IReadOnlyList<string> Env
    {
        get => Strings(Config["Env"]);
        set => SetStrings(Config, "Env", value);
    }

    public IReadOnlyList<string>? Cmd
    {
        get => Config["Cmd"] is null ? null : Strings(Config["Cmd"]);
        set => SetStrings(Config, "Cmd", value);
    }

    public IReadOnlyList<string>? Entrypoint
    {
        get => Config["Entrypoint"] is null ? null : Strings(Config["Entrypoint"]);
        set => SetStrings(Config, "Entrypoint", value);
    }

    public string? WorkingDir
    {
        get => (string?)Config["WorkingDir"];
        set => Set(Config, "WorkingDir", string.IsNullOrEmpty(value) ? null : JsonValue.Create(value));
    }

    public string? User
    {
        get => (string?)Config["User"];
        set => Set(Config, "User", string.IsNullOrEmpty(value) ? null : JsonValue.Create(value));
    }

    public string? StopSignal
    {
        get => (string?)Config["StopSignal"];
        set => Set(Config, "StopSignal", string.IsNullOrEmpty(value) ? null : JsonValue.Create(value));
    }

    /// <summary>Looks up one variable of <see cref="Env"/>.</summary>
    public string? GetEnv(string name)
    {
        foreach (var entry in Env)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && entry.AsSpan(0, eq).SequenceEqual(name))
            {
                return entry[(eq + 1)..];
            }
        }

        return null;
    }

    /// <summary>Sets one variable, replacing it in place when present so the order stays stable.</summary>
    public void SetEnv(string name, string value)
    {
        var env = Env.ToList();
        var index = env.FindIndex(e => e.StartsWith(name + "=", StringComparison.Ordinal));
        if (index >= 0)
        {
            env[index] = $"{name}={value}";
        }
        else
        {
            env.Add($"{name}={value}");
        }

        Env = env;
    }

    /// <summary>Labels (<c>config.Labels</c>).</summary>
    public IReadOnlyDictionary<string, string> Labels => Map(Config["Labels"]);

    public void SetLabel(string key, string value) => Object(Config, "Labels")[key] = value;

    /// <summary>Exposed ports as <c>80/tcp</c> keys.</summary>
    public IReadOnlyList<string> ExposedPorts => Config["ExposedPorts"] is JsonObject o ? [.. o.Select(p => p.Key)] : [];

    public void AddExposedPort(string port) => Object(Config, "ExposedPorts")[port] = new JsonObject();

    public IReadOnlyList<string> Volumes => Config["Volumes"] is JsonObject o ? [.. o.Select(p => p.Key)] : [];

    public void AddVolume(string path) => Object(Config, "Volumes")[path] = new JsonObject();

    /// <summary>The uncompressed digests of the layers, bottom first.</summary>
    public IReadOnlyList<Digest> DiffIds =>
        _root["rootfs"]?["diff_ids"] is JsonArray a ? [.. a.Select(d => Digest.Parse((string?)d ?? string.Empty))] : [];

    /// <summary>History entries, bottom first.</summary>
    public IReadOnlyList<HistoryEntry> History =>
        _root["history"] is JsonArray a ? [.. a.OfType<JsonObject>().Select(HistoryEntry.FromJson)] : [];

    /// <summary>Appends a layer: its diff_id and its history entry.</summary>
    public void AddLayer(Digest diffId, HistoryEntry history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var rootfs = Object(_root, "rootfs");
        rootfs["type"] ??= "layers";
        var ids = rootfs["diff_ids"] as JsonArray ?? (JsonArray)(rootfs["diff_ids"] = new JsonArray());
        ids.Add((JsonNode?)diffId.ToString());
        AddHistory(history with { EmptyLayer = false });
    }

    /// <summary>Appends a history entry without a layer (ENV, LABEL, CMD ...), marked <c>empty_layer</c>.</summary>
    public void AddHistory(HistoryEntry history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var list = _root["history"] as JsonArray ?? (JsonArray)(_root["history"] = new JsonArray());
        list.Add((JsonNode?)history.ToJson());
    }

    internal static string FormatTime(DateTimeOffset time) =>
        time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static IReadOnlyList<string> Strings(JsonNode? node) =>
        node is JsonArray a ? [.. a.Select(e => (string?)e ?? string.Empty)] : [];

    private static Dictionary<string, string> Map(JsonNode? node) =>
        node is JsonObject o ? o.ToDictionary(p => p.Key, p => (string?)p.Value ?? string.Empty, StringComparer.Ordinal) : new Dictionary<string, string>();

    private static void SetStrings(JsonObject target, string name, IReadOnlyList<string>? values) =>
        Set(target, name, values is null ? null : new JsonArray([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]));

    private static void Set(JsonObject target, string name, JsonNode? value)
    {
        if (value is null)
        {
            target.Remove(name);
        }
        else
        {
            target[name] = value;
        }
    }

    private static JsonObject Object(JsonObject parent, string name) =>
        parent[name] as JsonObject ?? (JsonObject)(parent[name] = new JsonObject());
}

/// <summary>One entry of the config's history.</summary>
public sealed record HistoryEntry
{
    public DateTimeOffset? Created { get; init; }

    public string? CreatedBy { get; init; }

    public string? Author { get; init; }

    public string? Comment { get; init; }

    public bool EmptyLayer { get; init; }

    internal static HistoryEntry FromJson(JsonObject o) => new()
    {
        Created = o["created"] is JsonValue v && v.TryGetValue<string>(out var s) && DateTimeOffset.TryParse(s, out var d) ? d : null,
        CreatedBy = (string?)o["created_by"],
        Author = (string?)o["author"],
        Comment = (string?)o["comment"],
        EmptyLayer = o["empty_layer"] is JsonValue e && e.TryGetValue<bool>(out var b) && b,
    };

    internal JsonObject ToJson()
    {
        var o = new JsonObject();
        if (Created is { } created)
        {
            o["created"] = ImageConfig.FormatTime(created);
        }

        if (CreatedBy is not null)
        {
            o["created_by"] = CreatedBy;
        }

        if (Author is not null)
        {
            o["author"] = Author;
        }

        if (Comment is not null)
        {
            o["comment"] = Comment;
        }

        if (EmptyLayer)
        {
            o["empty_layer"] = true;
        }

        return o;
    }
}
