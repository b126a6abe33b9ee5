namespace Farm.Worker.Hosting;

/// <summary>
/// What a worker's <c>/readyz</c> needs to know beyond the bus and the host's lifetime: whether the start-up recovery
/// ran and the RUN steps' firewall is in place (<see cref="WorkerRecoveryService"/>). Before then the worker must not
/// be counted as ready, even though the bus may already be connected.
/// </summary>
public sealed class WorkerReadiness
{
    private volatile bool _recovered;

    /// <summary>True once the previous process's leftovers are removed and the firewall is installed (or turned off).</summary>
    public bool Recovered => _recovered;

    /// <summary>Called by <see cref="WorkerRecoveryService"/> when it has finished.</summary>
    public void MarkRecovered() => _recovered = true;
}
