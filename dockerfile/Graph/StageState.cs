namespace Farm.Dockerfile.Graph;

/// <summary>
/// What a stage has accumulated while its instructions are planned: the variable scope that
/// expansion and RUN see (BuildKit's state env: base ENV, ENV and ARG, last one wins) and the image config.
/// </summary>
internal sealed class StageState
{
    private readonly Dictionary<string, (string Value, bool IsArg)> _scope = new(StringComparer.Ordinal);

    public string? Platform { get; set; }

    /// <summary>The config env, <c>KEY=value</c>: base image ENV and ENV instructions, never ARGs.</summary>
    public List<string> Env { get; private init; } = [];

    /// <summary>Where RUN runs and relative paths resolve; "/" until a WORKDIR or the base says otherwise.</summary>
    public string Workdir { get; set; } = "/";

    /// <summary>The config's WorkingDir: unset until a WORKDIR (or the base) sets it.</summary>
    public string? ConfigWorkdir { get; set; }

    public string? User { get; set; }

    public List<string>? Shell { get; set; }

    public IReadOnlyList<string>? Cmd { get; set; }

    public bool CmdSetInStage { get; set; }

    public IReadOnlyList<string>? Entrypoint { get; set; }

    public SortedSet<string> Ports { get; private init; } = new(StringComparer.Ordinal);

    public Dictionary<string, string> Labels { get; private init; } = new(StringComparer.Ordinal);

    public List<string> Volumes { get; private init; } = [];

    public string? StopSignal { get; set; }

    public HealthcheckConfig? Healthcheck { get; set; }

    public List<string> OnBuild { get; private init; } = [];

    public string? Author { get; set; }

    public IReadOnlyList<string> ShellOrDefault => Shell is { Count: > 0 } ? Shell : ["/bin/sh", "-c"];

    public string? Lookup(string name) => _scope.TryGetValue(name, out var entry) ? entry.Value : null;

    public bool IsArg(string name) => _scope.TryGetValue(name, out var entry) && entry.IsArg;

    public void SetArg(string name, string value) => _scope[name] = (value, true);

    public void SetEnv(string name, string value)
    {
        _scope[name] = (value, false);
        var entry = name + "=" + value;
        var index = Env.FindIndex(e => e.StartsWith(name + "=", StringComparison.Ordinal) || e == name);
        if (index >= 0)
        {
            Env[index] = entry;
        }
        else
        {
            Env.Add(entry);
        }
    }

    /// <summary>The environment of a RUN, sorted so that equal scopes give equal cache keys.</summary>
    public IReadOnlyList<string> ScopeEnv() =>
        _scope.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value.Value}").ToList();

    public IReadOnlyList<string> ArgNames() =>
        _scope.Where(p => p.Value.IsArg).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();

    public StageState Clone()
    {
        var copy = new StageState
        {
            Platform = Platform,
            Env = [.. Env],
            Workdir = Workdir,
            ConfigWorkdir = ConfigWorkdir,
            User = User,
            Shell = Shell is null ? null : [.. Shell],
            Cmd = Cmd,
            Entrypoint = Entrypoint,
            Ports = new SortedSet<string>(Ports, StringComparer.Ordinal),
            Labels = new Dictionary<string, string>(Labels, StringComparer.Ordinal),
            Volumes = [.. Volumes],
            StopSignal = StopSignal,
            Healthcheck = Healthcheck,
            OnBuild = [.. OnBuild],
            Author = Author,
        };
        foreach (var (key, value) in _scope)
        {
            copy._scope[key] = value;
        }

        return copy;
    }

    public StageImageConfig ToConfig() => new()
    {
        Env = [.. Env],
        WorkingDir = ConfigWorkdir,
        User = User,
        Cmd = Cmd,
        Entrypoint = Entrypoint,
        ExposedPorts = [.. Ports],
        Labels = new SortedDictionary<string, string>(Labels, StringComparer.Ordinal),
        Volumes = [.. Volumes],
        StopSignal = StopSignal,
        Healthcheck = Healthcheck,
        Shell = Shell is null ? null : [.. Shell],
        OnBuild = [.. OnBuild],
        Author = Author,
    };
}
