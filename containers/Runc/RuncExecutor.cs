using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Farm.Containers.Sandbox;
using Farm.Oci.Layers;

namespace Farm.Containers.Runc;

/// <summary>Where <see cref="RuncExecutor"/> keeps runc's state and how it finds runc.</summary>
public sealed record RuncExecutorOptions
{
    /// <summary>runc's <c>--root</c>: the containers of this executor and no others.</summary>
    public required string Root { get; init; }

    /// <summary>The runc binary, looked up in PATH when not absolute.</summary>
    public string RuncPath { get; init; } = "runc";

    /// <summary>How long a cancelled process may take to die after SIGKILL before runc's process tree is killed.</summary>
    public TimeSpan KillGracePeriod { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// The one place Farm runs runc, for every way a container runs: a RUN step of a build and <c>farm run</c> start a
/// container's first process with <see cref="RunAsync"/>, <c>farm exec</c> starts another one in it with
/// <see cref="ExecAsync"/>. The shape is BuildKit's <c>executor.Executor</c> (Run and Exec over a process's streams,
/// with terminal and resize); the other members are runc's life-cycle commands for the same containers.
/// </summary>
/// <remarks>
/// runc runs in the foreground, so its exit is the process's exit and signals sent to runc reach the container. With a
/// terminal, runc's standard streams are the slave of a <see cref="PseudoTerminal"/> (runc honours
/// <c>--console-socket</c> only when it detaches, and a detached runc's exit says nothing about the process); runc
/// then proxies it to the container's own terminal and resizes that one on SIGWINCH.
/// </remarks>
public sealed class RuncExecutor
{
    private readonly RuncExecutorOptions _options;

    /// <summary>Creates an executor; the state directory is created on first use.</summary>
    public RuncExecutor(RuncExecutorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.Root);
        _options = options;
        Root = Path.GetFullPath(options.Root);
    }

    /// <summary>runc's <c>--root</c>.</summary>
    public string Root { get; }

    /// <summary>
    /// Creates container <paramref name="id"/> from <paramref name="bundle"/> (whose <c>config.json</c> must ask for a
    /// terminal exactly when <paramref name="io"/> does) and runs its process to the end (<c>runc run</c>). runc
    /// deletes a container whose process ended by itself.
    /// </summary>
    /// <returns>How the process ended; a process runc could not start has a <see cref="ProcessExit.StartError"/>.</returns>
    /// <exception cref="SandboxException">runc is missing, or an output stream failed (the container was killed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the process was killed first.</exception>
    public Task<ProcessExit> RunAsync(string id, string bundle, ProcessIo io, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentException.ThrowIfNullOrEmpty(bundle);
        ArgumentNullException.ThrowIfNull(io);
        var log = Path.Combine(bundle, "runc.log");
        File.Delete(log);
        return RunRuncAsync(["run", "--bundle", bundle, id], $"container {id}", log, io, async () => await KillAsync(id).ConfigureAwait(false) is null, cancellationToken);
    }

    /// <summary>Runs <paramref name="process"/> in the running container <paramref name="id"/> to its end (<c>runc exec</c>).</summary>
    /// <returns>How the process ended; a process runc could not start has a <see cref="ProcessExit.StartError"/>.</returns>
    /// <exception cref="SandboxException">runc is missing, or an output stream failed (the process was killed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the process was killed first.</exception>
    public async Task<ProcessExit> ExecAsync(string id, ExecProcess process, ProcessIo io, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(process);
        ArgumentNullException.ThrowIfNull(io);
        // Not under Root: runc list takes every directory there for a container.
        var name = "farm-exec-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var log = Path.Combine(Path.GetTempPath(), name + ".log");
        var pidFile = Path.Combine(Path.GetTempPath(), name + ".pid");
        var args = new List<string> { "exec", "--pid-file", pidFile };
        if (io.Terminal)
        {
            args.Add("--tty");
        }

        foreach (var e in process.Env)
        {
            args.AddRange(["--env", e]);
        }

        if (process.WorkingDirectory is { } cwd)
        {
            args.AddRange(["--cwd", cwd]);
        }

        if (process.User is { } user)
        {
            args.AddRange(["--user", $"{user.Uid}:{user.Gid}"]);
            foreach (var gid in user.AdditionalGids ?? [])
            {
                args.AddRange(["--additional-gids", gid.ToString(CultureInfo.InvariantCulture)]);
            }
        }

        args.Add(id);
        args.AddRange(process.Args);
        try
        {
            // runc kill reaches only the container's first process; an exec'd one is killed by the pid runc recorded.
            var what = $"'{string.Join(' ', process.Args)}' in container {id}";
            return await RunRuncAsync(args, what, log, io, () => Task.FromResult(KillPid(pidFile)), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(log);
            File.Delete(pidFile);
        }
    }

    /// <summary>runc's status of container <paramref name="id"/> (<c>created</c>, <c>running</c>, <c>paused</c>, <c>stopped</c>); null when runc has no such container.</summary>
    public async Task<string?> StatusAsync(string id)
    {
        var (exit, output, _) = await RuncAsync(["state", id]).ConfigureAwait(false);
        if (exit != 0)
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(output);
            return doc.RootElement.TryGetProperty("status", out var status) ? status.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Sends <paramref name="signal"/> (<c>KILL</c>, <c>TERM</c>, <c>SIGUSR1</c>, ...) to the container's first process; false when runc refused.</summary>
    public async Task<bool> SignalAsync(string id, string signal) => (await RuncAsync(["kill", id, signal]).ConfigureAwait(false)).ExitCode == 0;

    /// <summary>
    /// Kills the container's first process (and with it the container's pid namespace): <c>runc kill KILL</c>, and when
    /// runc refuses, SIGKILL to the process runc recorded as the container's init. runc refuses when it cannot read the
    /// container's state, its freezer state included, which is what a machine without a usable cgroup freezer gives;
    /// the process is killed all the same, since nothing is frozen there to keep the signal from it.
    /// </summary>
    /// <returns>Null when the process was sent SIGKILL; else runc's refusal, for the error message.</returns>
    public async Task<string?> KillAsync(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var (exit, output, errors) = await RuncAsync(["kill", id, "KILL"]).ConfigureAwait(false);
        if (exit == 0)
        {
            return null;
        }

        var refusal = (output + errors).Trim();
        // The pid with its start time, as runc itself checks it, so a pid reused by another process is never killed.
        return InitProcess(id) is { } init && init.IsAlive() && Interop.Kill(init.Pid, 9) == 0 ? null : refusal;
    }

    /// <summary>Freezes the container (cgroup freezer); the error runc gave when it could not.</summary>
    public async Task<string?> PauseAsync(string id)
    {
        var (exit, output, errors) = await RuncAsync(["pause", id]).ConfigureAwait(false);
        return exit == 0 ? null : (output + errors).Trim();
    }

    /// <summary>Thaws a paused container.</summary>
    public Task ResumeAsync(string id) => RuncAsync(["resume", id]);

    /// <summary>
    /// Removes container <paramref name="id"/>, killing what still runs; a container runc does not know is no error.
    /// Without its state directory under the root (<c>runc run</c> removed it when its process exited) runc is not
    /// started at all: one process less on every RUN step's path.
    /// </summary>
    public Task DeleteAsync(string id) =>
        Directory.Exists(Path.Combine(Root, id)) ? RuncAsync(["delete", "--force", id]) : Task.CompletedTask;

    /// <summary>The ids of this executor's containers.</summary>
    /// <exception cref="SandboxException">runc list failed.</exception>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var (exit, output, errors) = await RuncAsync(["list", "--quiet"]).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (exit != 0)
        {
            throw new SandboxException($"runc list failed: {errors.Trim()}; check {Root}.");
        }

        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private async Task<ProcessExit> RunRuncAsync(
        IReadOnlyList<string> command,
        string what,
        string log,
        ProcessIo io,
        Func<Task<bool>> signalKill,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var terminal = io.Terminal ? PseudoTerminal.Open(io.InitialSize) : null;
        using var runc = Start(["--log", log, "--log-format", "json", .. command], terminal);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var streams = ProcessStreams.Start(runc, terminal, io, stop, cancellationToken);
        try
        {
            await runc.WaitForExitAsync(stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await KillAsync(runc, signalKill).ConfigureAwait(false);
        }

        await streams.CompleteAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (streams.OutputError is { } error)
        {
            throw new SandboxException($"the output of {what} could not be written, so the process was stopped: {error.Message}", error);
        }

        return new ProcessExit(runc.ExitCode, runc.ExitCode == 0 ? null : RuncLog.LastError(log));
    }

    private Process Start(IReadOnlyList<string> args, PseudoTerminal? terminal)
    {
        Directory.CreateDirectory(Root);
        // With a terminal, sh opens the slave as runc's three streams: .NET can only hand a child pipes or its own streams.
        var start = new ProcessStartInfo(terminal is null ? _options.RuncPath : "/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (terminal is not null)
        {
            foreach (var a in (string[])["-c", "exec \"$@\" <>\"$0\" >&0 2>&0", terminal.SlavePath, _options.RuncPath])
            {
                start.ArgumentList.Add(a);
            }
        }

        start.ArgumentList.Add("--root");
        start.ArgumentList.Add(Root);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        try
        {
            return Process.Start(start) ?? throw new SandboxException($"runc ({_options.RuncPath}) did not start.");
        }
        catch (Win32Exception e)
        {
            throw new SandboxException($"runc could not be started as '{_options.RuncPath}': {e.Message}. Install it: apt-get install runc.", e);
        }
    }

    private async Task KillAsync(Process runc, Func<Task<bool>> signalKill)
    {
        if (await signalKill().ConfigureAwait(false))
        {
            using var grace = new CancellationTokenSource(_options.KillGracePeriod);
            try
            {
                await runc.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException)
            {
                // Still alive after the grace period: fall through to killing the whole tree.
            }
        }

        // The signal fails while the container is still being created; killing runc and its children (runc init, the
        // container's first process) then stops it, and runc delete --force removes what is left.
        runc.Kill(entireProcessTree: true);
        await runc.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The container's init process as runc's <c>state.json</c> records it; null when runc has no such container.</summary>
    private ProcessIdentity? InitProcess(string id)
    {
        try
        {
            using var state = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, id, "state.json")));
            var root = state.RootElement;
            return root.TryGetProperty("init_process_pid", out var pid) && pid.TryGetInt32(out var p)
                && root.TryGetProperty("init_process_start", out var start) && start.TryGetInt64(out var ticks)
                ? new ProcessIdentity(p, ticks)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    private static bool KillPid(string pidFile)
    {
        try
        {
            return int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out var pid) && Interop.Kill(pid, 9) == 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private async Task<(int ExitCode, string Output, string Errors)> RuncAsync(IReadOnlyList<string> args)
    {
        using var runc = Start(args, terminal: null);
        runc.StandardInput.Close();
        var stdout = runc.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = runc.StandardError.ReadToEndAsync(CancellationToken.None);
        await runc.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        return (runc.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
