using System.Globalization;
using System.Threading.Channels;
using Farm.Coordinator.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Farm.Coordinator.Builds;

/// <summary>
/// The events of every build as one stream per build that every coordinator of the farm reads: the coordinator
/// running a build appends its events (numbered, <see cref="SequencedBuildEvent"/>), and any coordinator serves
/// <c>GET /builds/{id}/events?follow=true</c> from it, live, until the build's end event (docs/architecture.md,
/// "Failure model"). Enabled when <see cref="CoordinatorOptions.Redis"/> is set; without Redis there is one silo, and
/// it follows its own <see cref="BuildRecord"/>s.
/// </summary>
/// <remarks>
/// Why a Redis stream (<c>XADD</c>/<c>XRANGE</c> on <c>farm:build-events:{id}</c>) and not Orleans streams or the bus:
/// followers need the events they missed, not only the ones published while they listen; a client that lost its
/// coordinator resumes after the last event it saw, perhaps minutes later, on a coordinator that never saw the build.
/// A Redis stream is that log: every coordinator already shares Redis (clustering, grain state, the action cache), the
/// event's number is the entry id (<c>0-{seq}</c>), so a number is stored once (an append that repeats one is refused,
/// which makes retries and a stale run harmless), and reading after a number is one <c>XRANGE</c>. Orleans' memory
/// streams keep nothing for a late subscriber and lose what is queued on a silo that dies; the bus's queues deliver to
/// whoever consumes, not a history per build. A Redis pub/sub message on <c>farm:build-events:{id}</c> after each
/// append wakes followers at once; it carries nothing they need, so a lost one only delays them until their next poll.
/// The stream of a build expires <see cref="Retention"/> after its last event.
/// </remarks>
public sealed partial class BuildEventStream : IAsyncDisposable
{
    /// <summary>How long a build's events stay after its last one.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    /// <summary>Entries a build's stream keeps at most (about): a build that logs more loses its oldest lines.</summary>
    private const long MaxEntries = 200_000;

    private const string Field = "e";

    private readonly CoordinatorOptions? _configuration;
    private readonly ILogger<BuildEventStream> _logger;
    private readonly SemaphoreSlim _connect = new(1, 1);
    private ConnectionMultiplexer? _redis;

    public BuildEventStream(IOptions<CoordinatorOptions> options, ILogger<BuildEventStream> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _configuration = string.IsNullOrWhiteSpace(options.Value.Redis) ? null : options.Value;
        _logger = logger;
    }

    /// <summary>True when builds' events go to Redis, so that every coordinator can follow every build.</summary>
    public bool Enabled => _configuration is not null;

    /// <summary>The number of the last event stored for the build; 0 when none is.</summary>
    public async Task<long> LastSeqAsync(Guid buildId, CancellationToken cancellationToken)
    {
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var last = await db.StreamRangeAsync(Key(buildId), "-", "+", 1, Order.Descending).WaitAsync(cancellationToken).ConfigureAwait(false);
        return last.Length == 0 ? 0 : Seq(last[0].Id);
    }

    /// <summary>
    /// Appends numbered event lines in order and wakes the build's followers. A number already stored is skipped: a
    /// retried batch, or a run that a newer run overtook, never stores an event twice.
    /// </summary>
    public async Task AppendAsync(Guid buildId, IReadOnlyList<(long Seq, string Line)> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            return;
        }

        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var key = Key(buildId);
        foreach (var (seq, line) in events)
        {
            try
            {
                await db.StreamAddAsync(key, Field, line, Id(seq), MaxEntries, useApproximateMaxLength: true, limit: null, StreamTrimMode.KeepReferences).ConfigureAwait(false);
            }
            catch (RedisServerException e) when (e.Message.Contains("equal or smaller", StringComparison.Ordinal))
            {
                LogAlreadyStored(_logger, buildId, seq);
            }
        }

        await db.KeyExpireAsync(key, Retention).ConfigureAwait(false);
        await db.PublishAsync(Channel(buildId), events[^1].Seq).ConfigureAwait(false);
    }

    /// <summary>Up to <paramref name="count"/> event lines numbered above <paramref name="after"/>, oldest first.</summary>
    public async Task<IReadOnlyList<(long Seq, string Line)>> ReadAsync(Guid buildId, long after, int count, CancellationToken cancellationToken)
    {
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var entries = await db.StreamRangeAsync(Key(buildId), Id(after + 1), "+", count).WaitAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<(long, string)>(entries.Length);
        foreach (var entry in entries)
        {
            if (entry[Field] is { IsNull: false } value)
            {
                result.Add((Seq(entry.Id), value.ToString()));
            }
        }

        return result;
    }

    /// <summary>A signal that fires when events of the build were appended (subscribe before reading, so none is missed).</summary>
    public async Task<Wakeup> SubscribeAsync(Guid buildId, CancellationToken cancellationToken)
    {
        var redis = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        var queue = await redis.GetSubscriber().SubscribeAsync(Channel(buildId)).WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Wakeup(queue);
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }

        _connect.Dispose();
    }

    private static RedisKey Key(Guid buildId) => "farm:build-events:" + buildId.ToString("N");

    private static RedisChannel Channel(Guid buildId) => RedisChannel.Literal("farm:build-events:" + buildId.ToString("N"));

    /// <summary>The entry id of event <paramref name="seq"/>: Redis orders ids by their two numbers, so <c>0-seq</c> orders by seq.</summary>
    private static string Id(long seq) => "0-" + seq.ToString(CultureInfo.InvariantCulture);

    private static long Seq(RedisValue id)
    {
        var text = id.ToString();
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        return long.Parse(text.AsSpan(dash + 1), CultureInfo.InvariantCulture);
    }

    private async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken) =>
        (await ConnectAsync(cancellationToken).ConfigureAwait(false)).GetDatabase();

    private async Task<ConnectionMultiplexer> ConnectAsync(CancellationToken cancellationToken)
    {
        if (_redis is { } ready)
        {
            return ready;
        }

        var configuration = _configuration ?? throw new InvalidOperationException("The build event stream needs Farm:Coordinator:Redis.");
        await _connect.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _redis ??= await ConnectionMultiplexer.ConnectAsync(FarmRedis.Configuration(configuration)).ConfigureAwait(false);
        }
        finally
        {
            _connect.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Build {BuildId}: event {Seq} was stored before; skipped")]
    private static partial void LogAlreadyStored(ILogger logger, Guid buildId, long seq);

    /// <summary>Wakes a follower when its build's stream grew; disposing unsubscribes.</summary>
    public sealed class Wakeup : IAsyncDisposable
    {
        private readonly ChannelMessageQueue _queue;
        private readonly Channel<bool> _signal = System.Threading.Channels.Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

        internal Wakeup(ChannelMessageQueue queue)
        {
            _queue = queue;
            _queue.OnMessage(_ => _signal.Writer.TryWrite(true));
        }

        /// <summary>True when woken, false after <paramref name="timeout"/> (the caller reads anyway: a wake-up can be lost).</summary>
        public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(timeout);
            try
            {
                await _signal.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
                return true;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return false;
            }
        }

        public async ValueTask DisposeAsync() => await _queue.UnsubscribeAsync().ConfigureAwait(false);
    }
}
