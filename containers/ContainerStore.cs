using System.Security.Cryptography;
using System.Text.Json;

namespace Farm.Containers;

/// <summary>
/// The containers of this machine under <c>STATE/containers</c>: one directory per container id holding its
/// <c>config.json</c> (<see cref="ContainerState"/>), overlay directories, runc bundle, network files and log. Names
/// and id prefixes resolve as docker resolves them.
/// </summary>
public sealed class ContainerStore
{
    private const string StateFile = "config.json";
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(60);

    private static readonly string[] Adjectives =
        ["brave", "calm", "eager", "fond", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky", "sharp", "tender", "vivid", "witty", "zen"];

    private static readonly string[] Nouns =
        ["babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yalow"];

    /// <summary>Opens the store under <paramref name="stateDirectory"/> (created when missing).</summary>
    public ContainerStore(string stateDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDirectory);
        StateDirectory = Path.GetFullPath(stateDirectory);
        Root = Path.Combine(StateDirectory, "containers");
        Directory.CreateDirectory(Root);
    }

    /// <summary>The farm state directory the store lives in.</summary>
    public string StateDirectory { get; }

    /// <summary><c>STATE/containers</c>.</summary>
    public string Root { get; }

    /// <summary>The directory of container <paramref name="id"/>.</summary>
    public string DirectoryOf(string id) => Path.Combine(Root, id);

    /// <summary>The files of container <paramref name="id"/>.</summary>
    internal ContainerPaths PathsOf(string id) => new(DirectoryOf(id));

    /// <summary>A new random container id (64 hex digits).</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Every container, newest first.</summary>
    public IReadOnlyList<ContainerState> List()
    {
        var list = new List<ContainerState>();
        foreach (var dir in Directory.EnumerateDirectories(Root))
        {
            if (TryLoad(Path.GetFileName(dir)) is { } state)
            {
                list.Add(state);
            }
        }

        return [.. list.OrderByDescending(c => c.Created)];
    }

    /// <summary>The container with this exact name, full id or unique id prefix.</summary>
    /// <exception cref="NoSuchContainerException">None matches.</exception>
    /// <exception cref="AmbiguousContainerException">An id prefix matches several.</exception>
    public ContainerState Resolve(string nameOrId)
    {
        ArgumentException.ThrowIfNullOrEmpty(nameOrId);
        var all = List();
        var name = nameOrId.TrimStart('/');
        if (all.FirstOrDefault(c => c.Id == name || c.Name == name) is { } exact)
        {
            return exact;
        }

        var matches = all.Where(c => c.Id.StartsWith(name, StringComparison.Ordinal)).ToList();
        return matches.Count switch
        {
            0 => throw new NoSuchContainerException(nameOrId),
            1 => matches[0],
            _ => throw new AmbiguousContainerException(nameOrId, [.. matches.Select(c => c.ShortId)]),
        };
    }

    /// <summary>Reads container <paramref name="id"/>; null when it was removed.</summary>
    public ContainerState? TryLoad(string id)
    {
        try
        {
            var bytes = File.ReadAllBytes(Path.Combine(DirectoryOf(id), StateFile));
            return JsonSerializer.Deserialize(bytes, ContainerJsonContext.Default.ContainerState);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Writes the state atomically (temp file and rename), so a concurrent reader sees the old or the new one.</summary>
    /// <returns>False when the container's directory is gone (removed meanwhile).</returns>
    public bool Save(ContainerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var dir = DirectoryOf(state.Id);
        if (!Directory.Exists(dir))
        {
            return false;
        }

        var temp = Path.Combine(dir, $".{StateFile}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(state, ContainerJsonContext.Default.ContainerState));
            File.Move(temp, Path.Combine(dir, StateFile), overwrite: true);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Changes the saved state under the store lock; returns the new state, or null when the container is gone.</summary>
    public ContainerState? Update(string id, Func<ContainerState, ContainerState> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        using (Lock())
        {
            if (TryLoad(id) is not { } state)
            {
                return null;
            }

            var updated = change(state);
            return Save(updated) ? updated : null;
        }
    }

    /// <summary>
    /// Creates the directory of a new container and saves its first state, checking under the lock that the name is
    /// free; a null name gets a generated one.
    /// </summary>
    /// <exception cref="ContainerNameException">The name is taken or malformed.</exception>
    public ContainerState Add(Func<string, ContainerState> create, string? name)
    {
        ArgumentNullException.ThrowIfNull(create);
        if (name is not null && (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-') || !char.IsAsciiLetterOrDigit(name[0])))
        {
            throw new ContainerNameException(name, "is not valid: use letters, digits, '_', '.' and '-', starting with a letter or digit");
        }

        using (Lock())
        {
            var taken = List().Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            if (name is not null && taken.Contains(name))
            {
                throw new ContainerNameException(name, "is already in use; remove that container (farm rm -f) or choose another --name");
            }

            var chosen = name ?? GenerateName(taken);
            var state = create(chosen);
            Directory.CreateDirectory(DirectoryOf(state.Id));
            Save(state);
            return state;
        }
    }

    /// <summary>Deletes the container's directory (nothing may be mounted in it any more).</summary>
    public void Delete(string id)
    {
        var dir = DirectoryOf(id);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string GenerateName(HashSet<string> taken)
    {
        while (true)
        {
            var name = $"{Adjectives[RandomNumberGenerator.GetInt32(Adjectives.Length)]}_{Nouns[RandomNumberGenerator.GetInt32(Nouns.Length)]}";
            if (!taken.Contains(name))
            {
                return name;
            }

            name += "_" + RandomNumberGenerator.GetInt32(1000);
            if (!taken.Contains(name))
            {
                return name;
            }
        }
    }

    private FileStream Lock() => LockFile(Path.Combine(Root, ".lock"));

    /// <summary>An exclusive lock across farm processes (flock through FileShare.None), waited for with back-off.</summary>
    internal static FileStream LockFile(string path)
    {
        var started = DateTime.UtcNow;
        var delay = 5;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow - started < LockTimeout)
            {
                Thread.Sleep(delay);
                delay = Math.Min(delay * 2, 200);
            }
            catch (IOException e)
            {
                throw new ContainerRuntimeException($"the lock {path} is still held after {LockTimeout.TotalSeconds:0} s; wait for the other farm process or remove the file if none runs.", e);
            }
        }
    }
}
