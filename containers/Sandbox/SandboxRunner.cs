using System.Security.Cryptography;
using System.Text.Json;
using Farm.Containers.Runc;
using Farm.Containers.Snapshots;
using Farm.Oci.IO;

namespace Farm.Containers.Sandbox;

/// <summary>Where and how <see cref="SandboxRunner"/> runs its containers.</summary>
public sealed record SandboxRunnerOptions
{
    /// <summary>The worker's state directory; bundles go to <c>bundles/</c> and runc's private state to <c>runc/</c>.</summary>
    public required string StateDirectory { get; init; }

    /// <summary>The runc binary, looked up in PATH when not absolute.</summary>
    public string RuncPath { get; init; } = "runc";

    /// <summary>How many of the last output lines a <see cref="RunFailedException"/> carries.</summary>
    public int OutputTailLines { get; init; } = 20;

    /// <summary>How long a cancelled run may take to die after <c>runc kill</c> before its process tree is killed.</summary>
    public TimeSpan KillGracePeriod { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Private networks kept ready for the next RUN steps (made and removed off their path).</summary>
    public int SpareNetworks { get; init; } = 2;

    /// <summary>The host file copied into every sandbox as /etc/resolv.conf.</summary>
    public string HostResolvConf { get; init; } = "/etc/resolv.conf";

    /// <summary>
    /// Keeps private networks off this machine's addresses and the farm's services: installed before the first
    /// private network is made, whose slirp4netns then runs as its group. Null: a step reaches whatever this machine
    /// reaches, its loopback excepted.
    /// </summary>
    public SandboxFirewall? Firewall { get; init; }
}

/// <summary>The outcome of a successful run.</summary>
/// <param name="ExitCode">Always 0: a non-zero exit throws <see cref="RunFailedException"/>.</param>
/// <param name="User">The user the command ran as.</param>
/// <param name="MountStubs">The mount points to clean out of the upperdir; pass to <see cref="OverlaySnapshot.Seal"/>.</param>
public sealed record RunResult(int ExitCode, ResolvedUser User, MountStubs MountStubs);

/// <summary>
/// Runs a RUN step in a throw-away container: a bundle it writes from a <see cref="RunSpec"/> and always removes, run by
/// the <see cref="RuncExecutor"/> (no terminal, stdin at EOF, output as lines), with runc's state in a private
/// <c>--root</c> so the worker never sees or touches other containers.
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
public sealed class SandboxRunner : IAsyncDisposable
{
    private readonly SandboxRunnerOptions _options;
    private readonly SandboxNetworks _networks;

    /// <summary>Creates a runner; directories are created on first use.</summary>
    public SandboxRunner(SandboxRunnerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Executor = new RuncExecutor(new RuncExecutorOptions
        {
            Root = Path.Combine(Path.GetFullPath(options.StateDirectory), "runc"),
            RuncPath = options.RuncPath,
            KillGracePeriod = options.KillGracePeriod,
        });
        BundlesDirectory = Path.Combine(Path.GetFullPath(options.StateDirectory), "bundles");
        NetworksDirectory = Path.Combine(Path.GetFullPath(options.StateDirectory), "networks");
        _networks = new SandboxNetworks(NetworksDirectory, options.SpareNetworks, options.Firewall?.Group);
    }

    /// <summary>The executor of this runner's containers (runc's <c>--root</c> is private to the runner).</summary>
    public RuncExecutor Executor { get; }

    /// <summary>Where bundles are written while their run lasts.</summary>
    public string BundlesDirectory { get; }

    /// <summary>Records of the private networks this runner made and has not removed yet.</summary>
    public string NetworksDirectory { get; }

    /// <summary>Removes the networks kept ready, and waits for the used ones being removed.</summary>
    public ValueTask DisposeAsync() => _networks.DisposeAsync();

    /// <summary>
    /// Runs <paramref name="spec"/> to completion. Output is passed to <paramref name="onOutput"/> line by line
    /// while the command runs, one call at a time, stdout and stderr interleaved as they arrive.
    /// </summary>
    /// <exception cref="RunFailedException">The command exited non-zero.</exception>
    /// <exception cref="StepLimitException">The command went over one of <see cref="RunSpec.Limits"/> (FARM3020-3022).</exception>
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
        SandboxNetwork? network = null;
        StepCgroup? cgroup = null;
        try
        {
            if (spec.Network == NetworkMode.Private)
            {
                if (_options.Firewall is { } firewall)
                {
                    await firewall.InstallAsync(cancellationToken).ConfigureAwait(false);
                }

                network = await _networks.TakeAsync(cancellationToken).ConfigureAwait(false);
                spec = spec with { NetworkNamespacePath = network.NamespacePath };
            }

            var files = WriteNetworkFiles(bundle, spec);
            if (spec.Limits.NeedsCgroup)
            {
                cgroup = StepCgroup.Create(id, spec.Limits);
            }

            var runtimeSpec = RuntimeSpecGenerator.Generate(spec, user, files, cgroup?.ContainerPath);
            await File.WriteAllBytesAsync(
                Path.Combine(bundle, "config.json"),
                JsonSerializer.SerializeToUtf8Bytes(runtimeSpec, RuntimeSpecJsonContext.Default.RuntimeSpec),
                cancellationToken).ConfigureAwait(false);

            var stubs = MountStubs.Capture(spec.RootfsPath, spec.UpperDir, RuntimeSpecGenerator.MountDestinations(runtimeSpec));
            using var output = new OutputLines(onOutput, _options.OutputTailLines);
            ProcessExit exit;
            // The step's own limits stop it through this token; the caller's token still means cancellation.
            using var limited = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var stopWatching = new CancellationTokenSource();
            if (spec.Limits.Timeout is { } timeout)
            {
                limited.CancelAfter(timeout);
            }

            var pidsWatch = spec.Limits.Pids is { } pidsLimit && cgroup is not null
                ? WatchPidsAsync(cgroup, pidsLimit, limited, stopWatching.Token)
                : Task.FromResult(false);
            try
            {
                exit = await Executor.RunAsync(id, bundle, new ProcessIo { Stdout = output.Stdout, Stderr = output.Stderr }, limited.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await stopWatching.CancelAsync().ConfigureAwait(false);
                var pidsReached = await pidsWatch.ConfigureAwait(false);
                await output.CompleteAsync(cancellationToken).ConfigureAwait(false);
                throw pidsReached
                    ? new StepPidsLimitException(spec.Args, spec.Limits.Pids!.Value, null, output.Tail())
                    : new StepTimeoutException(spec.Args, spec.Limits.Timeout!.Value, output.Tail());
            }
            catch (SandboxException) when (output.HandlerError is { } handlerError)
            {
                throw new SandboxException($"the output handler failed while '{string.Join(' ', spec.Args)}' ran, so the step was stopped: {handlerError.Message}", handlerError);
            }
            finally
            {
                await stopWatching.CancelAsync().ConfigureAwait(false);
                await pidsWatch.ConfigureAwait(false);
            }

            await output.CompleteAsync(cancellationToken).ConfigureAwait(false);
            if (exit.StartError is { } error)
            {
                throw new SandboxException(
                    $"runc could not start '{string.Join(' ', spec.Args)}': {error}. When it names the command or a path in the image, fix the RUN line or the image; otherwise check that the worker runs as root and runc works (runc --version).");
            }

            if (exit.ExitCode != 0)
            {
                // Only a failed step is blamed on a limit: a step may survive an OOM kill of one of its processes.
                if (spec.Limits.MemoryBytes is { } memory && cgroup!.OomOccurred())
                {
                    throw new StepMemoryLimitException(spec.Args, memory, exit.ExitCode, output.Tail());
                }

                if (spec.Limits.Pids is { } pids && cgroup!.PidsReached(pids))
                {
                    throw new StepPidsLimitException(spec.Args, pids, exit.ExitCode, output.Tail());
                }

                throw new RunFailedException(exit.ExitCode, spec.Args, output.Tail());
            }

            return new RunResult(exit.ExitCode, user, stubs);
        }
        finally
        {
            // runc run removes a container that exited by itself; this is for the killed and the half-created ones.
            await Executor.DeleteAsync(id).ConfigureAwait(false);
            cgroup?.Dispose();
            if (network is not null)
            {
                _networks.Release(network);
            }

            Directory.Delete(bundle, recursive: true);
        }
    }

    /// <summary>
    /// Polls the step's cgroup while it runs and stops the step (through <paramref name="stop"/>) once it reached its
    /// pids limit; true when it did. A fork bomb never ends by itself, so waiting for its exit is no option.
    /// </summary>
    private static async Task<bool> WatchPidsAsync(StepCgroup cgroup, int limit, CancellationTokenSource stop, CancellationToken stopWatching)
    {
        using var timer = new PeriodicTimer(PidsWatchInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopWatching).ConfigureAwait(false))
            {
                if (cgroup.PidsReached(limit))
                {
                    await stop.CancelAsync().ConfigureAwait(false);
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The step ended first.
        }

        return false;
    }

    private static readonly TimeSpan PidsWatchInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Lists the containers in this runner's runc state directory (for health checks and tests).</summary>
    public Task<IReadOnlyList<string>> ListContainersAsync(CancellationToken cancellationToken) => Executor.ListAsync(cancellationToken);

    /// <summary>
    /// Kills and deletes every container in this runner's state directory: after a worker process died, its
    /// containers run on as orphans. Returns how many were removed.
    /// </summary>
    public async Task<int> RemoveAllContainersAsync(CancellationToken cancellationToken)
    {
        var containers = await Executor.ListAsync(cancellationToken).ConfigureAwait(false);
        foreach (var id in containers)
        {
            await Executor.KillAsync(id).ConfigureAwait(false);
            await Executor.DeleteAsync(id).ConfigureAwait(false);
        }

        if (Directory.Exists(BundlesDirectory))
        {
            // A bundle left behind is a run whose worker died: its step cgroup goes too.
            foreach (var bundle in Directory.EnumerateDirectories(BundlesDirectory))
            {
                StepCgroup.Remove(Path.GetFileName(bundle));
            }

            Directory.Delete(BundlesDirectory, recursive: true);
        }

        // And the networks it had made (in use or ready): the records of this runner's directory are all orphans,
        // as a runner's recovery runs before its first step.
        await SandboxNetworks.RemoveOrphansAsync(NetworksDirectory).ConfigureAwait(false);
        return containers.Count;
    }

    private RuntimeSpecGenerator.NetworkFiles WriteNetworkFiles(string bundle, RunSpec spec)
    {
        var resolv = Path.Combine(bundle, "resolv.conf");
        var hosts = Path.Combine(bundle, "hosts");
        // A private network resolves through slirp4netns's forwarder: the host's resolv.conf may name a resolver on its
        // loopback, which the step cannot reach.
        File.WriteAllText(resolv, spec.Network == NetworkMode.Private
            ? $"nameserver {SlirpNetwork.DnsAddress}\n"
            : File.Exists(_options.HostResolvConf) ? File.ReadAllText(_options.HostResolvConf) : "");
        File.WriteAllText(hosts, RuntimeSpecGenerator.HostsFileContent(spec.Hostname, spec.ExtraHosts));
        UnixFile.Chmod(resolv, 0x1A4 /* 0644 */);
        UnixFile.Chmod(hosts, 0x1A4);
        return new(resolv, hosts);
    }

    /// <summary>
    /// Creates a missing working directory of a RUN step as Docker does (root-owned, 0755). It is a real change of the
    /// step and stays in the layer; runc would create it too, but with the umask of the moment.
    /// </summary>
    internal static void EnsureWorkingDirectory(string rootfs, string workingDirectory) =>
        WorkingDirectory.Create(rootfs, workingDirectory, owner: null);
}
