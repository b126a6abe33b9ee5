namespace Farm.Testing;

/// <summary>The end of a fixture: its processes and services go in the order given, each even when one before failed.</summary>
public static class Teardown
{
    /// <summary>
    /// Disposes <paramref name="resources"/> in order (workers before their coordinator before the services they
    /// use), skipping the ones never made; the first failure is thrown once all were tried.
    /// </summary>
    public static async Task InOrderAsync(params IAsyncDisposable?[] resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        Exception? first = null;
        foreach (var resource in resources)
        {
            if (resource is null)
            {
                continue;
            }

            try
            {
                await resource.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                first ??= e;
            }
        }

        if (first is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    /// <summary>What a failed wait appends: the last lines of each named process (a process not started shows nothing).</summary>
    public static string Diagnostics(params (string Name, string? Tail)[] processes)
    {
        ArgumentNullException.ThrowIfNull(processes);
        return string.Concat(processes.Select(p => $"{Environment.NewLine}--- {p.Name}:{Environment.NewLine}{p.Tail}"));
    }

    /// <summary>What a failed wait appends for a farm of processes: the last lines of the coordinator and of each worker, each said to be running or exited.</summary>
    public static string Diagnostics(CoordinatorProcess? coordinator, IEnumerable<WorkerProcess> workers) =>
        $"{Environment.NewLine}--- coordinator ({(coordinator?.HasExited == true ? "exited" : "running")}):{Environment.NewLine}{coordinator?.OutputTail()}"
        + string.Concat(workers.Select(w => $"{Environment.NewLine}--- {w.Name} ({(w.HasExited ? "exited" : "running")}):{Environment.NewLine}{w.OutputTail()}"));
}
