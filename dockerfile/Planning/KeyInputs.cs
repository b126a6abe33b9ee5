using System.Security.Cryptography;
using System.Text;

namespace Farm.Dockerfile.Planning;

/// <summary>
/// What went into one step's cache key, each input as a digest (docs/architecture.md, "Why a step ran"): enough to
/// say which input changed between two builds, never enough to recover a value. Build args and environment variables
/// are kept as names with a keyed digest of their values (<see cref="KeyInputDigester"/>); context files as paths with
/// a digest of what the key covers (type, mode, size, sha256, link target).
/// </summary>
public sealed record StepKeyInputs
{
    /// <summary>The step's id in its build graph, <c>s{stage}/{n}</c>.</summary>
    public required string StepId { get; init; }

    public required int StageIndex { get; init; }

    /// <summary>The instruction keyword (RUN, COPY, ADD, WORKDIR).</summary>
    public required string Instruction { get; init; }

    /// <summary>The step's cache key.</summary>
    public required string Key { get; init; }

    /// <summary>The key below: the previous layer step of the stage, or the stage's base.</summary>
    public required string ParentKey { get; init; }

    /// <summary>The step sits directly on its stage's base (it is the stage's first layer step).</summary>
    public bool ParentIsBase { get; init; }

    /// <summary>What the stage starts from, as written: an image reference, <c>stage N</c> or <c>scratch</c>.</summary>
    public required string BaseReference { get; init; }

    /// <summary>The base's manifest digest (an image), its final key (a stage), or empty (scratch).</summary>
    public string BaseDigest { get; init; } = string.Empty;

    /// <summary>A digest of the instruction as expanded.</summary>
    public required string Text { get; init; }

    /// <summary>The step's other settings (shell and argv, user, workdir, network, mounts, flags), name to digest.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>What <c>COPY --from</c> or a <c>RUN --mount=from=</c> reads: <c>stage N</c> or an image reference, to its key or digest.</summary>
    public IReadOnlyDictionary<string, string> Sources { get; init; } = new Dictionary<string, string>();

    /// <summary>The context files the step reads, path to digest; at most <see cref="KeyInputsOptions.MaxFilesPerStep"/>.</summary>
    public IReadOnlyDictionary<string, string> Files { get; init; } = new Dictionary<string, string>();

    /// <summary>How many context files the step reads (also those beyond <see cref="Files"/>).</summary>
    public int FileCount { get; init; }

    /// <summary>A digest over every file the step reads, so a change beyond the recorded ones is still seen.</summary>
    public string FilesDigest { get; init; } = string.Empty;

    /// <summary>Build args in scope (<c>ARG</c> names the step depends on), name to keyed digest of the value.</summary>
    public IReadOnlyDictionary<string, string> Args { get; init; } = new Dictionary<string, string>();

    /// <summary>Environment variables of a RUN that are not build args, name to keyed digest of the value.</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
}

/// <summary>Whether and how <see cref="CacheKeyPlanner"/> records <see cref="StepKeyInputs"/>.</summary>
public sealed record KeyInputsOptions
{
    /// <summary>The key of the value digests; see <see cref="KeyInputDigester"/>.</summary>
    public required KeyInputDigester Digester { get; init; }

    /// <summary>Context files recorded by path per step; a step reading more keeps only the first ones and a digest of all.</summary>
    public int MaxFilesPerStep { get; init; } = 2000;

    /// <summary>Context files recorded by path in the whole build; later steps keep only their digest of all.</summary>
    public int MaxFiles { get; init; } = 20000;

    /// <summary>The build's <c>--build-arg</c> values: outside RUN, what an ARG a step expands stood for (digested, never kept).</summary>
    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// Digests of values that must never be stored in clear (build args, environment): HMAC-SHA256 under a key of the farm's
/// own, so that a digest only says whether a value changed. A plain hash of a short value (a version, a flag) could be
/// reversed by trying candidates; without the key it cannot.
/// </summary>
public sealed class KeyInputDigester
{
    private readonly byte[] _key;

    public KeyInputDigester(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length < 16)
        {
            throw new ArgumentException("A value digest key needs at least 16 bytes.", nameof(key));
        }

        _key = [.. key];
    }

    /// <summary>The keyed digest of <paramref name="name"/>'s value: 32 hex digits (128 bits).</summary>
    public string Value(string name, string? value)
    {
        ArgumentNullException.ThrowIfNull(name);
        var bytes = Encoding.UTF8.GetBytes(name + "\0" + (value is null ? "\u0001null" : "=" + value));
        return Convert.ToHexStringLower(HMACSHA256.HashData(_key, bytes))[..32];
    }

    /// <summary>A plain digest (no key) of what is not secret: instruction text, file attributes.</summary>
    public static string Plain(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)))[..32];

    public override string ToString() => "KeyInputDigester { Key = *** }";
}
