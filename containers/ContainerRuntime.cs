using Farm.Containers.Runc;
using Farm.Containers.Sandbox;
using Farm.Contracts;
using Farm.Oci.Images;

namespace Farm.Containers;

/// <summary>
/// The local container runtime behind <c>farm run/exec/ps/stop/start/rm/commit/logs/port</c>: containers from the
/// local image store on the build machinery (extracted layers, overlayfs, the <see cref="RuncExecutor"/> over a
/// generated runtime spec), with state under <c>$FARM_STATE_DIR</c> so that they outlive the farm process that
/// started them.
/// </summary>
/// <remarks>
/// This type is the entry point; the work is done by <see cref="ContainerStore"/> (state and names),
/// <see cref="ContainerFilesystem"/> (layers and mounts), <see cref="ContainerBundle"/> (runtime spec),
/// <see cref="ContainerSupervisor"/> (running and recording the end), <see cref="ContainerCommitter"/> and
/// <see cref="ContainerLog"/>. A container's files are laid out as <see cref="ContainerPaths"/> says.
/// </remarks>
public sealed class ContainerRuntime
{
    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(30);

    private readonly ContainerFilesystem _filesystem;
    private readonly ContainerSupervisor _supervisor;
    private readonly ContainerCommitter _committer;

    /// <summary>A runtime over the state directory (default <see cref="LocalImageStore.DefaultStateDirectory"/>).</summary>
    public ContainerRuntime(string? stateDirectory = null, string runcPath = "runc")
    {
        Store = new ContainerStore(stateDirectory ?? LocalImageStore.DefaultStateDirectory());
        Executor = new RuncExecutor(new RuncExecutorOptions { Root = Path.Combine(Store.StateDirectory, "runc"), RuncPath = runcPath });
        _filesystem = new ContainerFilesystem(Store);
        _supervisor = new ContainerSupervisor(Store, Executor, _filesystem);
        _committer = new ContainerCommitter(Store, Executor);
    }

    /// <summary>The containers.</summary>
    public ContainerStore Store { get; }

    /// <summary>The executor these containers run under (runc's <c>--root</c> is <c>STATE/runc</c>).</summary>
    public RuncExecutor Executor { get; }

    /// <summary>runc's <c>--root</c> for these containers.</summary>
    public string RuncRoot => Executor.Root;

    /// <summary>Where a container's output is recorded.</summary>
    public string LogPath(ContainerState container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return Store.PathsOf(container.Id).Log;
    }

    /// <summary>The merged root file system of a container (mounted while it runs).</summary>
    public string RootfsPath(ContainerState container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return Store.PathsOf(container.Id).Merged;
    }

    /// <summary>
    /// Creates a container from <paramref name="image"/>: its state, init layer, upperdir and runc bundle. It does
    /// not start it (<see cref="SuperviseAsync"/> does).
    /// </summary>
    public async Task<ContainerState> CreateAsync(ContainerCreateOptions options, LocalImage image, LocalImageStore images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(images);
        var config = image.Config;
        // docker: --entrypoint replaces the image's and drops its CMD; a command after the image replaces CMD.
        var entrypoint = options.Entrypoint ?? config.Entrypoint ?? [];
        var command = options.Command.Count > 0 ? options.Command : options.Entrypoint is null ? config.Cmd ?? [] : [];
        var args = entrypoint.Concat(command).ToList();
        if (args.Count == 0)
        {
            throw new ContainerRuntimeException($"the image {options.Image} has neither ENTRYPOINT nor CMD, so there is nothing to run; give a command after the image name.");
        }

        var env = config.Env.ToList();
        foreach (var entry in options.Env.Select(WithCallerValue))
        {
            var key = entry[..entry.IndexOf('=', StringComparison.Ordinal)];
            env.RemoveAll(x => x.StartsWith(key + "=", StringComparison.Ordinal));
            env.Add(entry);
        }

        var ports = new List<PortMapping>(options.Ports);
        if (options.PublishAll)
        {
            ports.AddRange(PortMapping.ForExposed(config.ExposedPorts.Where(p => !ports.Any(m => $"{m.ContainerPort}/{m.Protocol}" == p))));
        }

        if (options.Network != ContainerNetwork.Private)
        {
            // Only a private namespace has ports to publish; docker ignores -p for host and none as well.
            ports.Clear();
        }

        var diffIds = config.DiffIds;
        var layers = image.Manifest.Layers.Select((l, i) => new LayerRef(l.Digest.ToString(), diffIds[i].ToString(), l.MediaType, l.Size)).ToList();
        var id = ContainerStore.NewId();
        var state = Store.Add(name => new ContainerState
        {
            Id = id,
            Name = name,
            Image = options.Image,
            ImageId = image.Id.ToString(),
            Layers = layers,
            Args = args,
            Command = options.Command.Count > 0 ? options.Command : null,
            EntrypointOverride = options.Entrypoint,
            Mounts = options.Mounts,
            Env = env,
            EnvOverrides = options.Env,
            WorkingDir = options.WorkingDir ?? (string.IsNullOrEmpty(config.WorkingDir) ? "/" : config.WorkingDir),
            WorkingDirOverride = options.WorkingDir,
            User = options.User ?? config.User ?? "",
            UserOverride = options.User,
            Tty = options.Tty,
            Interactive = options.Interactive,
            AutoRemove = options.AutoRemove,
            StopSignal = string.IsNullOrEmpty(config.StopSignal) ? "TERM" : config.StopSignal,
            Network = options.Network,
            Ports = ports,
            Hostname = id[..12],
            Created = DateTimeOffset.UtcNow,
            Status = ContainerStatus.Created,
        }, options.Name);

        try
        {
            var paths = Store.PathsOf(id);
            await File.WriteAllBytesAsync(paths.ImageConfig, image.ConfigBytes, cancellationToken).ConfigureAwait(false);
            await File.WriteAllBytesAsync(paths.ImageManifest, image.ManifestBytes, cancellationToken).ConfigureAwait(false);
            await _filesystem.CreateAsync(state, images, cancellationToken).ConfigureAwait(false);
            await ContainerBundle.WriteAsync(paths, state, cancellationToken).ConfigureAwait(false);
            return state;
        }
        catch
        {
            await _supervisor.CleanUpAsync(state).ConfigureAwait(false);
            Store.Delete(id);
            throw;
        }
    }

    /// <summary>
    /// Runs the container to its end in this process: mount, network, its process through the executor, then the exit
    /// code recorded and network and mount torn down. The container uses this process's standard streams (stdin only
    /// with <c>-i</c> or <c>-t</c>, a terminal with <c>-t</c> when this process has one).
    /// </summary>
    /// <param name="id">The container id.</param>
    /// <param name="recordOutput">
    /// Also append the output to the container's log for <c>farm logs</c> (a foreground run without terminal); false
    /// where this process's standard output already is the log (a detached supervisor).
    /// </param>
    /// <param name="cancellationToken">Cancels the set-up; a running container is ended by signals, not by this.</param>
    /// <returns>The container process's exit code (128 + n when killed by signal n).</returns>
    public Task<int> SuperviseAsync(string id, bool recordOutput, CancellationToken cancellationToken) =>
        _supervisor.SuperviseAsync(id, recordOutput, cancellationToken);

    /// <summary>
    /// Starts a supervisor for <paramref name="container"/> in a new session (not killed with the caller, not tied to
    /// its terminal), with its output going to the container's log, and waits until the container runs or ended.
    /// </summary>
    /// <param name="container">A created or exited container.</param>
    /// <param name="supervisorCommand">The command line that runs <see cref="SuperviseAsync"/> for the container id in a new farm process.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public Task<ContainerState> StartDetachedAsync(ContainerState container, IReadOnlyList<string> supervisorCommand, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(supervisorCommand);
        return _supervisor.StartDetachedAsync(container, supervisorCommand, cancellationToken);
    }

    /// <summary>
    /// The state with a dead supervisor taken into account: a container whose supervisor was killed is ended (and
    /// its leftovers removed), as a container dies with its containerd shim.
    /// </summary>
    public ContainerState Refresh(ContainerState container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return _supervisor.Refresh(container);
    }

    /// <summary>Runs a command in a running container (<c>runc exec</c>) with this process's standard streams.</summary>
    /// <returns>The command's exit code.</returns>
    /// <exception cref="ContainerStartException">runc could not start the command (not found, not executable).</exception>
    public async Task<int> ExecAsync(ContainerState container, ContainerExecOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(options);
        container = Refresh(container);
        if (container.Status != ContainerStatus.Running)
        {
            throw new ContainerStateException(container.Name, "is not running; start it with farm start.");
        }

        var user = options.User is { } spec ? UserResolver.Resolve(RootfsPath(container), spec) : null;
        var process = new ExecProcess
        {
            Args = options.Args,
            Env = [.. options.Env.Select(WithCallerValue)],
            WorkingDirectory = options.WorkingDir,
            User = user is null ? null : new RuntimeUser(user.Uid, user.Gid, user.AdditionalGids),
        };
        using var console = HostConsole.Attach(stdin: options.Interactive, terminal: options.Tty && !Console.IsInputRedirected);
        var exit = await Executor.ExecAsync(container.Id, process, console.Io, cancellationToken).ConfigureAwait(false);
        return exit.StartError is { } error ? throw new ContainerStartException(container.Name, options.Args, error) : exit.ExitCode;
    }

    /// <summary>
    /// Stops a running container: its stop signal (SIGTERM unless the image says otherwise), then SIGKILL after
    /// <paramref name="timeout"/>, and waits for its supervisor to record the exit.
    /// </summary>
    public async Task<ContainerState> StopAsync(ContainerState container, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        container = Refresh(container);
        if (container.Status != ContainerStatus.Running)
        {
            return container;
        }

        if (timeout > TimeSpan.Zero)
        {
            await Executor.SignalAsync(container.Id, container.StopSignal).ConfigureAwait(false);
            if (await WaitEndedAsync(container, timeout, cancellationToken).ConfigureAwait(false))
            {
                return Refresh(container);
            }
        }

        // runc's refusal is not the end of it: the executor then kills the process runc recorded.
        var refused = await Executor.KillAsync(container.Id).ConfigureAwait(false);
        if (!await WaitEndedAsync(container, KillTimeout, cancellationToken).ConfigureAwait(false))
        {
            var why = refused is null ? string.Empty : $" (runc refused to kill it: {refused})";
            throw new ContainerRuntimeException($"{container.Name} did not end within {KillTimeout.TotalSeconds:0} s of SIGKILL{why}; check runc --root {RuncRoot} state {container.Id}.");
        }

        return Refresh(container);
    }

    /// <summary>
    /// Removes a container; a running one only with <paramref name="force"/> (killed first). Leaves no mount,
    /// process, slirp4netns or network namespace behind.
    /// </summary>
    public async Task RemoveAsync(ContainerState container, bool force, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        container = Refresh(container);
        if (container.Status == ContainerStatus.Running)
        {
            if (!force)
            {
                throw new ContainerStateException(container.Name, "is running; stop it first (farm stop) or remove it with farm rm -f.");
            }

            await StopAsync(container, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }

        await _supervisor.CleanUpAsync(Store.TryLoad(container.Id) ?? container).ConfigureAwait(false);
        Store.Delete(container.Id);
    }

    /// <summary>
    /// <c>farm commit</c>: the container's upperdir as a new layer on top of its image, the config with the
    /// container's settings and <see cref="ContainerCommitOptions.Changes"/>, and a history entry with author and
    /// message; stored (and named) in <paramref name="images"/>.
    /// </summary>
    /// <param name="container">The container.</param>
    /// <param name="options">Name, author, message, changes, pause.</param>
    /// <param name="images">The local image store.</param>
    /// <param name="warnings">Where a warning goes (pause unavailable).</param>
    /// <param name="cancellationToken">Cancels the commit.</param>
    public Task<LocalImage> CommitAsync(ContainerState container, ContainerCommitOptions options, LocalImageStore images, TextWriter warnings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(warnings);
        return _committer.CommitAsync(Refresh(container), options, images, warnings, cancellationToken);
    }

    /// <summary>
    /// Copies the container's log to <paramref name="output"/>; with <paramref name="follow"/>, goes on copying what it
    /// writes until it ends.
    /// </summary>
    public Task CopyLogAsync(ContainerState container, bool follow, Stream output, CancellationToken cancellationToken) =>
        CopyLogAsync(container, follow, null, output, cancellationToken);

    /// <summary>As <see cref="CopyLogAsync(ContainerState, bool, Stream, CancellationToken)"/>, from the last <paramref name="tail"/> lines (<c>farm logs --tail</c>); null for all.</summary>
    public Task CopyLogAsync(ContainerState container, bool follow, int? tail, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(output);
        return ContainerLog.CopyAsync(LogPath(container), follow, tail, () => Refresh(container).Status == ContainerStatus.Running, output, cancellationToken);
    }

    /// <summary>
    /// As <see cref="CopyLogAsync(ContainerState, bool, int?, Stream, CancellationToken)"/>, only the lines dated at or
    /// after <paramref name="since"/> (<c>farm logs --since</c>; null: all), each after its time with
    /// <paramref name="timestamps"/> (<c>--timestamps</c>).
    /// </summary>
    public Task CopyLogAsync(ContainerState container, bool follow, int? tail, DateTimeOffset? since, bool timestamps, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(output);
        return since is null && !timestamps
            ? CopyLogAsync(container, follow, tail, output, cancellationToken)
            : ContainerLog.CopyLinesAsync(LogPath(container), follow, tail, since, timestamps, () => Refresh(container).Status == ContainerStatus.Running, output, cancellationToken);
    }

    /// <summary><c>-e K</c> takes K's value from the caller's environment, as docker does.</summary>
    private static string WithCallerValue(string env) =>
        env.Contains('=', StringComparison.Ordinal) ? env : $"{env}={Environment.GetEnvironmentVariable(env)}";

    private async Task<bool> WaitEndedAsync(ContainerState container, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Refresh(container).Status != ContainerStatus.Running)
            {
                return true;
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        return false;
    }
}
