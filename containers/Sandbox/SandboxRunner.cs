using System.ComponentModel;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

using Farm.Oci.IO;

namespace Farm.Worker.Sandbox;

/// <summary>Where and how <see cref="RuncRunner"/> runs runc.</summary>
public sealed record RuncRunnerOptions
{
    /// <summary>The worker's state directory; bundles go to <c>bundles/</c> and runc's private state to <c>runc/</c>.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>The runc binary, looked up in PATH when not absolute.</summary>
    public string RuncPath { get; init; } = "runc";

    /// <summary>How many of the last output lines a <see cref="RunFailedException"/> carries.</summary>
    public int OutputTailLines { get; init; } = 20;

    /// <summary>How long a cancelled run may take to die after <c>runc kill</c> before its process tree is killed.</summary>
    public TimeSpan KillGracePeriod { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The host file copied into every sandbox as /etc/resolv.conf.</summary>
    public string HostResolvConf { get; init; } = "/etc/resolv.conf";
}

/// <summary>The outcome of a successful run.</summary>
/// <param name="ExitCode">Always 0: a non-zero exit throws <see cref="RunFailedException"/>.</param>
/// <param name="User">The user the command ran as.</param>
/// <param name="MountStubs">The mount points to clean out of the upperdir; pass to <see cref="OverlaySnapshot.Seal"/>.</param>
public sealed record RunResult(int ExitCode, ResolvedUser User, MountStubs MountStubs);

/// <summary>
/// Runs a RUN step under runc (foreground <c>runc run</c>, no terminal, stdin at EOF) in a bundle it writes
/// and always removes, with runc's state in a private <c>--root</c> so the worker never sees or touches other containers.
/// </summary>
/// <example>
/// A RUN step, from mount to a layer-ready upperdir:
/// <code>
/// await using var snapshot = await snapshotter.CreateAsync(parentLayerDirs, ct);
/// var result = await runner.RunAsync(
///     new RunSpec { Args = ["/bin/sh", "-c", command], RootfsPath = snapshot.MergedDir, UpperDir = snapshot.UpperDir, User = user, Env = env },
///     (line, token) => sink.WriteAsync(line, token),
///     ct);
/// snapshot.Seal(result.MountStubs);   // unmount, drop /proc, /etc/hosts, ... stubs
/// // diff snapshot.UpperDir into a layer, then let the snapshot be disposed
/// </code>
/// </example>
public sealed class RuncRunner
{
    private readonly RuncRunnerOptions _options;

    /// <summary>Creates a runner; directories are created on first use.</summary>
    public RuncRunner(RuncRunnerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        RuncRoot = Path.Combine(Path.GetFullPath(options.StateDirectory), "runc");
        BundlesDirectory = Path.Combine(Path.GetFullPath(options.StateDirectory), "bundles");
    }

    /// <summary>runc's <c>--root</c> state directory for this worker.</summary>
    public string RuncRoot { get; }

    /// <summary>Where bundles are written while their run lasts.</summary>
    public string BundlesDirectory { get; }

    /// <summary>
    /// Runs <paramref name="spec"/> to completion. Output is passed to <paramref name="onOutput"/> line by line
    /// while the command runs, one call at a time, stdout and stderr interleaved as they arrive.
    /// </summary>
    /// <exception cref="RunFailedException">The command exited non-zero.</exception>
    /// <exception cref="UnknownUserException">The USER does not exist in the image.</exception>
    /// <exception cref="SandboxException">runc is missing or could not start the container.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the container has been killed and deleted.</exception>
    public async Task<RunResult> RunAsync(
        RunSpec spec,
        Func<OutputLine, CancellationToken, ValueTask>? onOutput,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        cancellationToken.ThrowIfCancellationRequested();

        var user = UserResolver.Resolve(spec.RootfsPath, spec.User);
        EnsureWorkingDirectory(spec.RootfsPath, spec.WorkingDirectory);

        var id = "farm-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var bundle = Path.Combine(BundlesDirectory, id);
        Directory.CreateDirectory(bundle);
        Directory.CreateDirectory(RuncRoot);
        try
        {
            var files = WriteNetworkFiles(bundle, spec.Hostname);
            var runtimeSpec = RuntimeSpecGenerator.Generate(spec, user, files);
            await File.WriteAllBytesAsync(
                Path.Combine(bundle, "config.json"),
                JsonSerializer.SerializeToUtf8Bytes(runtimeSpec, RuntimeSpecJsonContext.Default.RuntimeSpec),
                cancellationToken).ConfigureAwait(false);

            var stubs = MountStubs.Capture(spec.RootfsPath, spec.UpperDir, RuntimeSpecGenerator.MountDestinations(runtimeSpec));
            var logFile = Path.Combine(bundle, "runc.log");
            var exitCode = await RunContainerAsync(id, bundle, logFile, spec, onOutput, cancellationToken).ConfigureAwait(false);
            return new RunResult(exitCode, user, stubs);
        }
        finally
        {
            await DeleteContainerAsync(id).ConfigureAwait(false);
            Directory.Delete(bundle, recursive: true);
        }
    }

    private async Task<int> RunContainerAsync(
        string id,
        string bundle,
        string logFile,
        RunSpec spec,
        Func<OutputLine, CancellationToken, ValueTask>? onOutput,
        CancellationToken cancellationToken)
    {
        var start = RuncStartInfo(["--log", logFile, "--log-format", "json", "run", "--bundle", bundle, id]);
        start.RedirectStandardInput = true;
        using var process = StartRunc(start);
        // The container inherits runc's stdin; a closed pipe reads as EOF, like </dev/null.
        process.StandardInput.Close();

        var tail = new OutputTail(_options.OutputTailLines);
        using var gate = new SemaphoreSlim(1, 1);
        // Cancelled by the caller, or by a failing output callback: either way the container must die.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Exception? callbackError = null;
        async Task PumpAsync(StreamReader reader, OutputStream stream)
        {
            // Not cancellable: the pipes reach EOF once the container is dead, which stopping ensures.
            while (await reader.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is { } text)
            {
                var line = new OutputLine(stream, text);
                tail.Add(line);
                if (onOutput is null || stop.IsCancellationRequested)
                {
                    // Keep draining so a stopping container never blocks on a full pipe.
                    continue;
                }

                await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    await onOutput(line, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
                {
                    callbackError ??= e;
                    await stop.CancelAsync().ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The caller cancelled; handled where the exit is awaited.
                }
                finally
                {
                    gate.Release();
                }
            }
        }

        var pumps = Task.WhenAll(
            PumpAsync(process.StandardOutput, OutputStream.Stdout),
            PumpAsync(process.StandardError, OutputStream.Stderr));

        try
        {
            await process.WaitForExitAsync(stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await KillAsync(id, process).ConfigureAwait(false);
            await pumps.ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new SandboxException($"the output handler failed while '{string.Join(' ', spec.Args)}' ran, so the step was stopped: {callbackError?.Message}", callbackError);
        }

        await pumps.ConfigureAwait(false);
        var exitCode = process.ExitCode;
        if (exitCode == 0)
        {
            return 0;
        }

        if (RuncError(logFile) is { } error)
        {
            throw new SandboxException(
                $"runc could not start '{string.Join(' ', spec.Args)}': {error}. When it names the command or a path in the image, fix the RUN line or the image; otherwise check that the worker runs as root and runc works (runc --version).");
        }

        throw new RunFailedException(exitCode, spec.Args, tail.Snapshot());
    }

    private async Task KillAsync(string id, Process process)
    {
        var (killed, _) = await RuncAsync(["kill", id, "KILL"]).ConfigureAwait(false);
        if (killed == 0)
        {
            using var grace = new CancellationTokenSource(_options.KillGracePeriod);
            try
            {
                await process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException)
            {
                // Still alive after the grace period: fall through to killing the whole tree.
            }
        }

        // runc kill fails while the container is still being created; killing runc and its children (runc init,
        // the container's pid 1) then stops it, and runc delete -f removes what is left.
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private async Task DeleteContainerAsync(string id)
    {
        // runc run removes a container that exited by itself; this is for the killed and the half-created ones.
        // It fails harmlessly with "container does not exist" in the normal case.
        await RuncAsync(["delete", "--force", id]).ConfigureAwait(false);
    }

    private async Task<(int ExitCode, string Output)> RuncAsync(IReadOnlyList<string> args)
    {
        var start = RuncStartInfo(args);
        using var process = StartRunc(start);
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        return (process.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
    }

    /// <summary>Lists the containers in this runner's runc state directory (for health checks and tests).</summary>
    public async Task<IReadOnlyList<string>> ListContainersAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(RuncRoot);
        var (exit, output) = await RuncAsync(["list", "--quiet"]).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (exit != 0)
        {
            throw new SandboxException($"runc list failed: {output.Trim()}; check {RuncRoot}.");
        }

        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>
    /// Kills and deletes every container in this runner's state directory: after a worker process died, its
    /// containers run on as orphans. Returns how many were removed.
    /// </summary>
    public async Task<int> RemoveAllContainersAsync(CancellationToken cancellationToken)
    {
        var containers = await ListContainersAsync(cancellationToken).ConfigureAwait(false);
        foreach (var id in containers)
        {
            await RuncAsync(["kill", id, "KILL"]).ConfigureAwait(false);
            await DeleteContainerAsync(id).ConfigureAwait(false);
        }

        if (Directory.Exists(BundlesDirectory))
        {
            Directory.Delete(BundlesDirectory, recursive: true);
        }

        return containers.Count;
    }

    private ProcessStartInfo RuncStartInfo(IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo(_options.RuncPath)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("--root");
        start.ArgumentList.Add(RuncRoot);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        return start;
    }

    private Process StartRunc(ProcessStartInfo start)
    {
        try
        {
            return Process.Start(start) ?? throw new SandboxException($"runc ({_options.RuncPath}) did not start.");
        }
        catch (Win32Exception e)
        {
            throw new SandboxException($"runc could not be started as '{_options.RuncPath}': {e.Message}. Install it: apt-get install runc.", e);
        }
    }

    private RuntimeSpecGenerator.NetworkFiles WriteNetworkFiles(string bundle, string hostname)
    {
        var resolv = Path.Combine(bundle, "resolv.conf");
        var hosts = Path.Combine(bundle, "hosts");
        File.WriteAllText(resolv, File.Exists(_options.HostResolvConf) ? File.ReadAllText(_options.HostResolvConf) : "");
        File.WriteAllText(hosts, RuntimeSpecGenerator.HostsFileContent(hostname));
        UnixFile.Chmod(resolv, 0x1A4 /* 0644 */);
        UnixFile.Chmod(hosts, 0x1A4);
        return new(resolv, hosts);
    }

    /// <summary>
    /// Creates a missing WORKDIR as Docker does (root-owned, 0755). It is a real change of the step and stays in
    /// the layer; runc would create it too, but with the umask of the moment.
    /// </summary>
    internal static void EnsureWorkingDirectory(string rootfs, string workingDirectory)
    {
        var root = Path.GetFullPath(rootfs).TrimEnd('/');
        var path = RootfsPath.Resolve(root, workingDirectory);
        var status = UnixFile.Lstat(path);
        if (status is { IsDirectory: true })
        {
            return;
        }

        if (status is not null)
        {
            throw new RootfsPathException($"the working directory {workingDirectory} exists in the image but is not a directory; choose another WORKDIR.");
        }

        // Resolve has followed every symlink that exists, so creating the missing tail stays inside the rootfs.
        var current = root;
        foreach (var part in RootfsPath.Split(path[root.Length..]))
        {
            current += "/" + part;
            var s = UnixFile.Lstat(current);
            if (s is null)
            {
                Directory.CreateDirectory(current);
                UnixFile.Chmod(current, 0x1ED /* 0755 */);
            }
            else if (!s.Value.IsDirectory)
            {
                throw new RootfsPathException($"the working directory {workingDirectory} runs through a file in the image ({current[root.Length..]}); choose another WORKDIR.");
            }
        }
    }

    internal static string? RuncError(string logFile)
    {
        if (!File.Exists(logFile))
        {
            return null;
        }

        string? last = null;
        foreach (var line in File.ReadLines(logFile))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("level", out var level) && level.GetString() is "error" or "fatal"
                    && doc.RootElement.TryGetProperty("msg", out var msg))
                {
                    last = msg.GetString();
                }
            }
            catch (JsonException)
            {
                // runc writes plain text before its JSON logger is set up; such lines carry no verdict.
            }
        }

        return last;
    }

    private sealed class OutputTail(int capacity)
    {
        private readonly Queue<OutputLine> _lines = new();
        private readonly Lock _lock = new();

        public void Add(OutputLine line)
        {
            lock (_lock)
            {
                _lines.Enqueue(line);
                while (_lines.Count > capacity)
                {
                    _lines.Dequeue();
                }
            }
        }

        public IReadOnlyList<OutputLine> Snapshot()
        {
            lock (_lock)
            {
                return [.. _lines];
            }
        }
    }
}
