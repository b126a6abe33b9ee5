using System.Collections.Concurrent;
using Farm.Coordinator.Hosting;
using StackExchange.Redis;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Which workers hold which layers extracted in their layer stores: what cache-affinity dispatch
/// (<see cref="JobDispatcher"/>) prefers a worker by. A hint, not a truth: a worker may have evicted a layer since, which
/// only costs it a download, as on any other worker. Holds layer digests and worker names only.
/// </summary>
public interface ILayerLocality
{
    /// <summary>Records that <paramref name="worker"/> holds the layers <paramref name="digests"/> extracted.</summary>
    Task RecordAsync(string worker, IReadOnlyCollection<string> digests, CancellationToken cancellationToken);

    /// <summary>For each of <paramref name="digests"/>, in order, the workers recorded as holding it.</summary>
    Task<IReadOnlyList<IReadOnlyCollection<string>>> HoldersAsync(IReadOnlyList<string> digests, CancellationToken cancellationToken);
}

/// <summary>The locality of a coordinator alone (no Redis): in its memory, at most <see cref="MaxLayers"/> layers.</summary>
public sealed class MemoryLayerLocality : ILayerLocality
{
    /// <summary>Beyond this many layers the record starts again empty: it is a hint, and this bounds its memory.</summary>
    public const int MaxLayers = 100_000;

    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _holders = new(StringComparer.Ordinal);

    public Task RecordAsync(string worker, IReadOnlyCollection<string> digests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(digests);
        if (_holders.Count + digests.Count > MaxLayers)
        {
            _holders.Clear();
        }

        foreach (var digest in digests)
        {
            _holders.GetOrAdd(digest, _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal))[worker] = 0;
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<IReadOnlyCollection<string>>> HoldersAsync(IReadOnlyList<string> digests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(digests);
        IReadOnlyList<IReadOnlyCollection<string>> holders = [.. digests.Select(d => _holders.TryGetValue(d, out var workers) ? (IReadOnlyCollection<string>)[.. workers.Keys] : [])];
        return Task.FromResult(holders);
    }
}

/// <summary>
/// The locality every coordinator of a cluster shares: one Redis set of worker names per layer,
/// <c>farm:locality:sha256:...</c>, expiring <see cref="Expiry"/> after its last write.
/// </summary>
public sealed class RedisLayerLocality(CoordinatorOptions options) : ILayerLocality, IAsyncDisposable
{
    public const string KeyPrefix = "farm:locality:";

    /// <summary>A layer no job used for this long is forgotten (its holders have probably evicted it).</summary>
    public static readonly TimeSpan Expiry = TimeSpan.FromDays(7);

    private readonly SemaphoreSlim _connect = new(1, 1);
    private ConnectionMultiplexer? _redis;

    public async Task RecordAsync(string worker, IReadOnlyCollection<string> digests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(digests);
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var batch = db.CreateBatch();
        var writes = digests.SelectMany(d => new Task[] { batch.SetAddAsync(KeyPrefix + d, worker), batch.KeyExpireAsync(KeyPrefix + d, Expiry) }).ToList();
        batch.Execute();
        await Task.WhenAll(writes).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<IReadOnlyCollection<string>>> HoldersAsync(IReadOnlyList<string> digests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(digests);
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var batch = db.CreateBatch();
        var reads = digests.Select(d => batch.SetMembersAsync(KeyPrefix + d)).ToList();
        batch.Execute();
        var members = await Task.WhenAll(reads).WaitAsync(cancellationToken).ConfigureAwait(false);
        return [.. members.Select(m => (IReadOnlyCollection<string>)[.. m.Select(v => v.ToString())])];
    }

    private async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken)
    {
        if (_redis is { } ready)
        {
            return ready.GetDatabase();
        }

        await _connect.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _redis ??= await ConnectionMultiplexer.ConnectAsync(FarmRedis.Configuration(options)).ConfigureAwait(false);
            return _redis.GetDatabase();
        }
        finally
        {
            _connect.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }

        _connect.Dispose();
    }
}
