using System.Collections.Concurrent;

namespace Farm.Worker.Jobs;

/// <summary>
/// The jobs this worker runs, by id, so a <see cref="Contracts.CancelLayerJob"/> can stop one; and the jobs cancelled
/// before they started here (the cancel reaches every worker, the job only one, perhaps later), remembered for a while.
/// </summary>
public sealed class RunningJobs
{
    private static readonly TimeSpan RememberCancelled = TimeSpan.FromHours(1);
    private readonly ConcurrentDictionary<Guid, CancellationTokenSource> _running = new();
    private readonly ConcurrentDictionary<Guid, long> _cancelled = new();

    /// <summary>A token that fires when the job is cancelled (or <paramref name="consumer"/> fires); already cancelled when it was.</summary>
    public Registration Start(Guid jobId, CancellationToken consumer)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(consumer);
        _running[jobId] = source;
        if (_cancelled.ContainsKey(jobId))
        {
            source.Cancel();
        }

        return new Registration(this, jobId, source);
    }

    /// <summary>Cancels the job if it runs here, and remembers it in case it has not started yet.</summary>
    public void Cancel(Guid jobId)
    {
        var now = Environment.TickCount64;
        _cancelled[jobId] = now;
        foreach (var (id, at) in _cancelled)
        {
            if (now - at > RememberCancelled.TotalMilliseconds)
            {
                _cancelled.TryRemove(id, out _);
            }
        }

        if (_running.TryGetValue(jobId, out var source))
        {
            try
            {
                source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It ended meanwhile.
            }
        }
    }

    /// <summary>Whether <see cref="Cancel"/> was asked for the job.</summary>
    public bool WasCancelled(Guid jobId) => _cancelled.ContainsKey(jobId);

    public sealed class Registration(RunningJobs jobs, Guid jobId, CancellationTokenSource source) : IDisposable
    {
        public CancellationToken Token => source.Token;

        public void Dispose()
        {
            jobs._running.TryRemove(new KeyValuePair<Guid, CancellationTokenSource>(jobId, source));
            source.Dispose();
        }
    }
}
