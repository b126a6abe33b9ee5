namespace Farm.Worker.Jobs;

/// <summary>
/// The worker's job slots (<see cref="WorkerOptions.Slots"/>), shared by its two job endpoints: the farm's queue and
/// its own affinity queue (docs/architecture.md, "A build, step by step", 6). Each endpoint alone takes at most Slots
/// messages (its prefetch); together they run at most Slots jobs because every job holds a slot here while it runs.
/// </summary>
/// <remarks>
/// RabbitMQ limits unacknowledged deliveries per channel and MassTransit gives each endpoint a channel of its own, so a
/// job can arrive on one endpoint while the other's jobs fill every slot. It then waits here, boundedly: an affinity
/// job until its affinity wait runs out (then it goes to the farm's queue), a job of the farm's queue for as long as
/// the affinity jobs that fill the slots were willing to wait (then it goes back to the farm's queue, where a free
/// worker takes it), so a busy worker never sits on a job another worker could run for longer than that.
/// </remarks>
public sealed class JobSlots : IDisposable
{
    private readonly SemaphoreSlim _free;
    private readonly Lock _lock = new();
    private readonly List<TimeSpan> _affinityWaits = [];

    public JobSlots(int slots)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        _free = new SemaphoreSlim(slots, slots);
    }

    /// <summary>
    /// Takes a slot, waiting at most <paramref name="wait"/> (<see cref="Timeout.InfiniteTimeSpan"/>: as long as it
    /// takes); null when none came free in time. <paramref name="affinityWait"/>: the job came from the affinity queue
    /// and was willing to wait this long for this worker.
    /// </summary>
    public async Task<Slot?> TakeAsync(TimeSpan wait, TimeSpan? affinityWait, CancellationToken cancellationToken)
    {
        if (!await _free.WaitAsync(wait, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        if (affinityWait is { } held)
        {
            lock (_lock)
            {
                _affinityWaits.Add(held);
            }
        }

        return new Slot(this, affinityWait);
    }

    /// <summary>
    /// How long a job of the farm's queue may wait for a slot now: while affinity jobs hold slots, the longest wait one
    /// of them came with; otherwise as long as it takes (the farm's queue alone never delivers more than Slots jobs).
    /// </summary>
    public TimeSpan SharedJobWait
    {
        get
        {
            lock (_lock)
            {
                return _affinityWaits.Count == 0 ? Timeout.InfiniteTimeSpan : _affinityWaits.Max();
            }
        }
    }

    private void Release(TimeSpan? affinityWait)
    {
        if (affinityWait is { } held)
        {
            lock (_lock)
            {
                _affinityWaits.Remove(held);
            }
        }

        _free.Release();
    }

    public void Dispose() => _free.Dispose();

    /// <summary>A slot taken; disposing gives it back.</summary>
    public sealed class Slot : IDisposable
    {
        private readonly JobSlots _owner;
        private readonly TimeSpan? _affinityWait;
        private int _released;

        internal Slot(JobSlots owner, TimeSpan? affinityWait)
        {
            _owner = owner;
            _affinityWait = affinityWait;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _owner.Release(_affinityWait);
            }
        }
    }
}
