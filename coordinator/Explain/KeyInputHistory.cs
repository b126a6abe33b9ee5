using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Farm.Contracts;
using Farm.Dockerfile.Planning;
using StackExchange.Redis;

namespace Farm.Coordinator.Explain;

/// <summary>
/// The key inputs of the last successful build of each lineage (docs/architecture.md, "Why a step ran"): what a build
/// compares its steps with to say why one ran. A lineage is a tenant's Dockerfile and target under one tag, or in one
/// context directory with one Dockerfile (<see cref="BuildLineage"/>).
/// </summary>
public interface IKeyInputHistory
{
    /// <summary>The most recent build recorded under any of <paramref name="lineages"/>; null when none is.</summary>
    /// <exception cref="KeyInputHistoryUnavailableException">The store cannot be read (FARM4300).</exception>
    Task<BuildKeyInputs?> PreviousAsync(IReadOnlyList<string> lineages, CancellationToken cancellationToken);

    /// <summary>Records <paramref name="build"/> as the latest of every one of <paramref name="lineages"/>.</summary>
    /// <exception cref="KeyInputHistoryUnavailableException">The store cannot be written (FARM4300).</exception>
    Task RecordAsync(IReadOnlyList<string> lineages, BuildKeyInputs build, CancellationToken cancellationToken);

    /// <summary>The farm's digester of build arg and environment values, its key made once and kept in the store.</summary>
    /// <exception cref="KeyInputHistoryUnavailableException">The key cannot be read or made (FARM4300).</exception>
    Task<KeyInputDigester> DigesterAsync(CancellationToken cancellationToken);
}

/// <summary>FARM4300: the record of earlier builds' key inputs cannot be read or written; builds go on, without saying why a step ran.</summary>
public sealed class KeyInputHistoryUnavailableException(string store, string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.KeyInputHistoryUnavailable, $"The record of earlier builds' cache key inputs in {store} cannot be used: {reason}. Builds go on, but cannot say why a step ran; check that the store is reachable and writable.", inner);

/// <summary>Which earlier builds a build is compared with.</summary>
public static class BuildLineage
{
    /// <summary>At most this many tags of a build name lineages.</summary>
    public const int MaxTags = 8;

    /// <summary>
    /// The lineages of <paramref name="submit"/>: one per tag, and one for its context directory (the local farm) or
    /// Dockerfile path with the Dockerfile's location, each within its tenant and target.
    /// </summary>
    public static IReadOnlyList<string> Of(SubmitBuild submit)
    {
        ArgumentNullException.ThrowIfNull(submit);
        var scope = $"tenant={submit.Tenant}\ntarget={submit.Target}\n";
        var lineages = submit.Tags.Order(StringComparer.Ordinal).Take(MaxTags).Select(t => scope + "tag=" + t).ToList();
        lineages.Add(scope + "context=" + (submit.ContextDirectory ?? string.Empty) + "\ndockerfile=" + (submit.DockerfileLocation ?? submit.DockerfilePath));
        return lineages;
    }

    /// <summary>A lineage as a name safe for a file or a Redis key (it holds tags and paths, so it is hashed).</summary>
    public static string Hash(string lineage) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lineage)));

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
}

/// <summary>The local farm's history: one JSON file per lineage under <c>STATE/lineage/</c>, the digest key in <c>.key</c> (mode 0600).</summary>
public sealed class FileKeyInputHistory(string directory) : IKeyInputHistory
{
    private readonly Lock _keyLock = new();
    private KeyInputDigester? _digester;

    public string Directory { get; } = Path.GetFullPath(directory);

    public async Task<BuildKeyInputs?> PreviousAsync(IReadOnlyList<string> lineages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lineages);
        BuildKeyInputs? latest = null;
        foreach (var lineage in lineages)
        {
            var path = Path.Combine(Directory, BuildLineage.Hash(lineage) + ".json");
            try
            {
                var build = JsonSerializer.Deserialize<BuildKeyInputs>(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false), BuildLineage.Json);
                if (build is not null && (latest is null || build.At > latest.At))
                {
                    latest = build;
                }
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
            {
                throw new KeyInputHistoryUnavailableException(Directory, $"cannot read {path}: {e.Message}", e);
            }
        }

        return latest;
    }

    public async Task RecordAsync(IReadOnlyList<string> lineages, BuildKeyInputs build, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lineages);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(build, BuildLineage.Json);
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            foreach (var lineage in lineages)
            {
                var path = Path.Combine(Directory, BuildLineage.Hash(lineage) + ".json");
                var temporary = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
                await File.WriteAllBytesAsync(temporary, bytes, cancellationToken).ConfigureAwait(false);
                File.Move(temporary, path, overwrite: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyInputHistoryUnavailableException(Directory, e.Message, e);
        }
    }

    public Task<KeyInputDigester> DigesterAsync(CancellationToken cancellationToken)
    {
        if (_digester is { } ready)
        {
            return Task.FromResult(ready);
        }

        // A 32-byte file, read once per process: synchronous under a lock is simplest.
        using var held = _keyLock.EnterScope();
        try
        {
            var path = Path.Combine(Directory, ".key");
            System.IO.Directory.CreateDirectory(Directory);
            if (!File.Exists(path))
            {
                var temporary = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
                using (var file = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
                {
                    file.Write(RandomNumberGenerator.GetBytes(32));
                }

                // Another process may have made one meanwhile: the first one stays.
                try
                {
                    File.Move(temporary, path, overwrite: false);
                }
                catch (IOException) when (File.Exists(path))
                {
                    File.Delete(temporary);
                }
            }

            _digester ??= new KeyInputDigester(File.ReadAllBytes(path));
            return Task.FromResult(_digester);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new KeyInputHistoryUnavailableException(Directory, $"the digest key: {e.Message}", e);
        }
    }
}

/// <summary>
/// The cluster's history in Redis: <c>farm:lineage:{sha256 of the lineage}</c> holds the JSON of the latest build,
/// expiring <see cref="TimeToLive"/> after it was written; the digest key is <c>farm:explain-key</c>, made once by
/// whichever coordinator needs it first (<c>SET NX</c>) and shared by all.
/// </summary>
public sealed class RedisKeyInputHistory(IConnectionMultiplexer redis) : IKeyInputHistory
{
    /// <summary>How long a lineage's record outlives its last build.</summary>
    public static readonly TimeSpan TimeToLive = TimeSpan.FromDays(30);

    private const string Prefix = "farm:lineage:";
    private const string KeyName = "farm:explain-key";
    private readonly IDatabase _database = redis.GetDatabase();
    private KeyInputDigester? _digester;

    public async Task<BuildKeyInputs?> PreviousAsync(IReadOnlyList<string> lineages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lineages);
        RedisValue[] values;
        try
        {
            values = await _database.StringGetAsync([.. lineages.Select(l => (RedisKey)(Prefix + BuildLineage.Hash(l)))]).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw new KeyInputHistoryUnavailableException("Redis", e.Message, e);
        }

        try
        {
            return values.Where(v => !v.IsNull)
                .Select(v => JsonSerializer.Deserialize<BuildKeyInputs>((byte[])v!, BuildLineage.Json))
                .Where(b => b is not null)
                .MaxBy(b => b!.At);
        }
        catch (JsonException e)
        {
            throw new KeyInputHistoryUnavailableException("Redis", "a lineage record is not valid JSON: " + e.Message, e);
        }
    }

    public async Task RecordAsync(IReadOnlyList<string> lineages, BuildKeyInputs build, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lineages);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(build, BuildLineage.Json);
        try
        {
            await Task.WhenAll(lineages.Select(l => _database.StringSetAsync(Prefix + BuildLineage.Hash(l), bytes, TimeToLive))).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            throw new KeyInputHistoryUnavailableException("Redis", e.Message, e);
        }
    }

    public async Task<KeyInputDigester> DigesterAsync(CancellationToken cancellationToken)
    {
        if (_digester is { } ready)
        {
            return ready;
        }

        try
        {
            await _database.StringSetAsync(KeyName, RandomNumberGenerator.GetBytes(32), when: When.NotExists).WaitAsync(cancellationToken).ConfigureAwait(false);
            var key = await _database.StringGetAsync(KeyName).WaitAsync(cancellationToken).ConfigureAwait(false);
            return _digester = new KeyInputDigester((byte[])key!);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ArgumentException)
        {
            throw new KeyInputHistoryUnavailableException("Redis", $"the digest key {KeyName}: {e.Message}", e);
        }
    }
}
