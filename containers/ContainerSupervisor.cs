using System.Diagnostics;
using System.Runtime.InteropServices;
using Farm.Containers.Runc;
using Farm.Contracts;
using Farm.Oci.Images;

namespace Farm.Containers;

/// <summary>
/// Runs containers and records how they end. Each run has a supervisor: a farm process that mounts the root file
/// system, sets up the network, runs the container's process through the <see cref="RuncExecutor"/> and records the
/// exit code, then tears down network and mount. In the foreground the farm command is the supervisor; a detached
/// container gets a supervisor of its own in a new session, whose standard output and error are the container's log.
/// </summary>
/// <remarks>A container whose supervisor was killed is ended on the next look at it, as a container dies with its containerd shim.</remarks>
internal sealed class ContainerSupervisor(ContainerStore store, RuncExecutor executor, ContainerFilesystem filesystem)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs container <paramref name="id"/> to its end in this process; see <see cref="ContainerRuntime.SuperviseAsync"/>.</summary>
    public async Task<int> SuperviseAsync(string id, bool recordOutput, CancellationToken cancellationToken)
    {
        var state = store.TryLoad(id) ?? throw new NoSuchContainerException(id);
        if (state.Status == ContainerStatus.Running && state.Supervisor?.IsAlive() == true)
        {
            throw new ContainerStateException(state.Name, "is already running.");
        }

        // Signals for the container (Ctrl-C, farm's own SIGTERM) reach runc, which forwards them; this process must
        // live on to record the exit.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = true);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);

        var paths = store.PathsOf(id);
        int exitCode;
        try
        {
            if (state.StartedAt is not null)
            {
                // What a killed supervisor left behind (a runc container, slirp4netns holding the ports, the namespace).
                await CleanUpAsync(state).ConfigureAwait(false);
            }

            using (var images = await LocalImageStore.OpenAsync(store.StateDirectory, cancellationToken).ConfigureAwait(false))
            {
                await filesystem.MountAsync(state, images, cancellationToken).ConfigureAwait(false);
            }

            ProcessIdentity? slirp = null;
            if (state.Network == ContainerNetwork.Private)
            {
                await SlirpNetwork.CreateNamespaceAsync(id, cancellationToken).ConfigureAwait(false);
                slirp = await SlirpNetwork.StartAsync(id, state.Ports, cancellationToken).ConfigureAwait(false);
            }

            await ContainerBundle.SetTerminalAsync(paths, UsesTerminal(state), cancellationToken).ConfigureAwait(false);
            var self = ProcessIdentity.Of(Environment.ProcessId);
            state = store.Update(id, s => s with
            {
                Status = ContainerStatus.Running,
                StartedAt = DateTimeOffset.UtcNow,
                FinishedAt = null,
                ExitCode = null,
                Error = null,
                Supervisor = self,
                Slirp = slirp,
            }) ?? throw new NoSuchContainerException(id);

            exitCode = await RunAsync(state, paths, recordOutput).ConfigureAwait(false);
        }
        catch (ContainerStartException e)
        {
            await RecordExitAsync(id, e.ExitCode, e.Message).ConfigureAwait(false);
            throw;
        }
        catch (FarmException e)
        {
            await RecordExitAsync(id, 125, e.Message).ConfigureAwait(false);
            throw;
        }

        // runc run deletes the container it ran; the rest of the clean-up is farm's.
        await RecordExitAsync(id, exitCode, null, runcDeleted: true).ConfigureAwait(false);
        return exitCode;
    }

    /// <summary>Starts a supervisor in a new session and waits until the container runs or ended; see <see cref="ContainerRuntime.StartDetachedAsync"/>.</summary>
    public async Task<ContainerState> StartDetachedAsync(ContainerState container, IReadOnlyList<string> supervisorCommand, CancellationToken cancellationToken)
    {
        container = Refresh(container);
        if (container.Status == ContainerStatus.Running)
        {
            return container;
        }

        var log = store.PathsOf(container.Id).Log;
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false };
        // sh points the standard streams at the log before the supervisor starts, so it never holds the caller's.
        foreach (var a in (string[])["sh", "-c", "log=\"$1\"; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1", "sh", log, .. supervisorCommand])
        {
            start.ArgumentList.Add(a);
        }

        store.Update(container.Id, s => s with { Status = ContainerStatus.Created, ExitCode = null, Error = null, Supervisor = null });
        using var process = Process.Start(start) ?? throw new ContainerRuntimeException("setsid did not start.");
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            // Whether the supervisor ended is read before the state, so its last record is seen.
            var supervisorEnded = process.HasExited;
            var now = store.TryLoad(container.Id);
            if (now is null || now.Status == ContainerStatus.Exited)
            {
                return now ?? container with { Status = ContainerStatus.Exited };
            }

            if (now.Status == ContainerStatus.Running && await executor.StatusAsync(container.Id).ConfigureAwait(false) is "running" or "paused")
            {
                return now;
            }

            if (supervisorEnded && process.ExitCode != 0)
            {
                throw new ContainerRuntimeException($"the supervisor of {container.Name} exited with code {process.ExitCode} before the container ran; see {log}.");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ContainerRuntimeException($"{container.Name} did not start within {StartTimeout.TotalSeconds:0} s; see {log}.");
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The state with a dead supervisor taken into account: its container is ended and its leftovers removed.</summary>
    public ContainerState Refresh(ContainerState container)
    {
        var now = store.TryLoad(container.Id) ?? container;
        if (now.Status == ContainerStatus.Running && now.Supervisor?.IsAlive() != true)
        {
            CleanUpAsync(now).GetAwaiter().GetResult();
            return store.Update(now.Id, s => s.Status == ContainerStatus.Running
                ? s with { Status = ContainerStatus.Exited, ExitCode = s.ExitCode ?? 137, FinishedAt = DateTimeOffset.UtcNow, Supervisor = null }
                : s) ?? now;
        }

        return now;
    }

    /// <summary>Idempotent: runc's container, slirp4netns, the network namespace and the overlay mount go.</summary>
    public async Task CleanUpAsync(ContainerState state, bool runcDeleted = false)
    {
        if (!runcDeleted)
        {
            await executor.DeleteAsync(state.Id).ConfigureAwait(false);
        }

        SlirpNetwork.Stop(state.Slirp, state.Id);
        await SlirpNetwork.DeleteNamespaceAsync(state.Id).ConfigureAwait(false);
        filesystem.Unmount(state);
    }

    /// <summary>A container made with <c>-t</c> gets its terminal only when this process has one to give.</summary>
    private static bool UsesTerminal(ContainerState state) => state.Tty && !Console.IsInputRedirected;

    private async Task<int> RunAsync(ContainerState state, ContainerPaths paths, bool recordOutput)
    {
        var terminal = UsesTerminal(state);
        using var console = HostConsole.Attach(stdin: state.Interactive || state.Tty, terminal);
        var io = console.Io;
        // A terminal's output is the user's screen, not a log; otherwise the output goes into the log for farm logs,
        // through a writer that dates its lines (farm logs --since, --timestamps): teed to the console of a foreground
        // run, and only there for a detached one, whose standard streams are the log itself (left for the supervisor's
        // own messages).
        var log = !terminal ? new ContainerLog.Writer(paths.Log) : null;
        try
        {
            if (log is not null)
            {
                io = recordOutput
                    ? io with { Stdout = new ContainerLog.Tee(io.Stdout!, log), Stderr = new ContainerLog.Tee(io.Stderr!, log) }
                    : io with { Stdout = new ContainerLog.Tee(Stream.Null, log), Stderr = new ContainerLog.Tee(Stream.Null, log) };
            }

            // Not cancellable: the container is ended by signals (forwarded by runc) or farm stop, and its exit recorded.
            var exit = await executor.RunAsync(state.Id, paths.Bundle, io, CancellationToken.None).ConfigureAwait(false);
            return exit.StartError is { } error ? throw new ContainerStartException(state.Name, state.Args, error) : exit.ExitCode;
        }
        finally
        {
            if (log is not null)
            {
                await log.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task RecordExitAsync(string id, int exitCode, string? error, bool runcDeleted = false)
    {
        // The exit is recorded even when the clean-up fails: a container left "running" with a live supervisor
        // would make farm stop wait for an end that already came. The clean-up's failure is its error then.
        FarmException? cleanUp = null;
        if (store.TryLoad(id) is { } state)
        {
            try
            {
                await CleanUpAsync(state, runcDeleted).ConfigureAwait(false);
            }
            catch (FarmException e)
            {
                cleanUp = e;
            }
        }

        var ended = store.Update(id, s => s with
        {
            Status = ContainerStatus.Exited,
            ExitCode = exitCode,
            Error = error ?? cleanUp?.Message,
            FinishedAt = DateTimeOffset.UtcNow,
            Supervisor = null,
            Slirp = null,
        });
        if (cleanUp is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cleanUp);
        }

        if (ended is { AutoRemove: true })
        {
            store.Delete(id);
        }
    }
}
