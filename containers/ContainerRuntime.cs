using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Farm.Contracts;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.IO;
using Farm.Oci.Layers;
using Farm.Worker.Sandbox;
using Farm.Worker.Store;

namespace Farm.Worker.Containers;

/// <summary>
/// The local container runtime behind <c>farm run/exec/ps/stop/start/rm/commit/logs/port</c>: containers from the
/// local image store on the worker's own machinery (extracted layers of a <see cref="LayerStore"/>, overlayfs,
/// runc from a generated runtime spec), with state under <c>$FARM_STATE_DIR</c> so that they outlive the farm
/// process that started them.
/// </summary>
/// <remarks>
/// <para>Each run has a supervisor: a farm process that mounts the rootfs, sets up the network, runs
/// <c>runc run</c> in the foreground (so the container's exit status is runc's, and a terminal is runc's own
/// console handling) and records the exit code, then tears down network and mount. In the foreground the farm
/// command is the supervisor; a detached container gets a supervisor of its own in a new session, whose standard
/// output and error are the container's log file.</para>
/// <para>Like Docker's <c>-init</c> layer, the mount points runc needs (/proc, /dev, /sys, /etc/hosts, ...) are
/// created in a lower layer of their own, so the container's upperdir holds only its own changes and
/// <c>farm commit</c> writes it as it is.</para>
/// <para>Container directory: <c>config.json</c> (<see cref="ContainerState"/>), <c>u</c>/<c>w</c>/<c>m</c>
/// (upper, work, merged), <c>i</c> (init layer), <c>b/config.json</c> (runc bundle), <c>hosts</c>,
/// <c>resolv.conf</c>, <c>hostname</c>, <c>image-config.json</c> and <c>image-manifest.json</c> (the base, for
/// commit), <c>log</c>.</para>
/// </remarks>
public sealed class ContainerRuntime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(30);
    private static readonly string[] InitDirectories = ["proc", "dev", "sys", "etc"];
    private static readonly string[] InitFiles = ["etc/resolv.conf", "etc/hosts", "etc/hostname"];

    private readonly string _runcPath;

    /// <summary>A runtime over the state directory (default <see cref="LocalImageStore.DefaultStateDirectory"/>).</summary>
    public ContainerRuntime(string? stateDirectory = null, string runcPath = "runc")
    {
        Store = new ContainerStore(stateDirectory ?? LocalImageStore.DefaultStateDirectory());
        _runcPath = runcPath;
        RuncRoot = Path.Combine(Store.StateDirectory, "runc");
    }

    /// <summary>The containers.</summary>
    public ContainerStore Store { get; }

    /// <summary>runc's <c>--root</c> for these containers.</summary>
    public string RuncRoot { get; }

    /// <summary>Where a container's output is recorded when it runs detached.</summary>
    public string LogPath(ContainerState container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return Path.Combine(Store.DirectoryOf(container.Id), "log");
    }

    /// <summary>The merged root file system of a container (mounted while it runs).</summary>
    public string RootfsPath(ContainerState container)
    {
        ArgumentNullException.ThrowIfNull(container);
        return Path.Combine(Store.DirectoryOf(container.Id), "m");
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
        var args = (config.Entrypoint ?? []).Concat(options.Command.Count > 0 ? options.Command : config.Cmd ?? []).ToList();
        if (args.Count == 0)
        {
            throw new ContainerRuntimeException($"the image {options.Image} has neither ENTRYPOINT nor CMD, so there is nothing to run; give a command after the image name.");
        }

        var env = config.Env.ToList();
        foreach (var e in options.Env)
        {
            var entry = e.Contains('=', StringComparison.Ordinal) ? e : $"{e}={Environment.GetEnvironmentVariable(e)}";
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
            var dir = Store.DirectoryOf(id);
            await File.WriteAllBytesAsync(Path.Combine(dir, "image-config.json"), image.ConfigBytes, cancellationToken).ConfigureAwait(false);
            await File.WriteAllBytesAsync(Path.Combine(dir, "image-manifest.json"), image.ManifestBytes, cancellationToken).ConfigureAwait(false);
            var lowers = await LowerDirectoriesAsync(state, images, cancellationToken).ConfigureAwait(false);
            CreateInitLayer(dir, lowers);
            await MountAsync(state, images, cancellationToken).ConfigureAwait(false);
            await WriteBundleAsync(state, cancellationToken).ConfigureAwait(false);
            return state;
        }
        catch
        {
            await CleanUpAsync(state).ConfigureAwait(false);
            Store.Delete(id);
            throw;
        }
    }

    /// <summary>
    /// Runs the container to its end in this process: mount, network, <c>runc run</c> in the foreground, then the
    /// exit code recorded and network and mount torn down. The container uses this process's standard streams
    /// (stdin only with <c>-i</c> or <c>-t</c>); the terminal of <c>-t</c> is runc's.
    /// </summary>
    /// <param name="id">The container id.</param>
    /// <param name="recordOutput">
    /// Also append the output to the container's log for <c>farm logs</c> (a foreground run without terminal); false
    /// where this process's standard output already is the log (a detached supervisor).
    /// </param>
    /// <param name="cancellationToken">Cancels the set-up; a running container is ended by signals, not by this.</param>
    /// <returns>The container process's exit code (128 + n when killed by signal n).</returns>
    public async Task<int> SuperviseAsync(string id, bool recordOutput, CancellationToken cancellationToken)
    {
        var state = Store.TryLoad(id) ?? throw new NoSuchContainerException(id);
        if (state.Status == ContainerStatus.Running && state.Supervisor?.IsAlive() == true)
        {
            throw new ContainerStateException(state.Name, "is already running.");
        }

        // Signals for the container (Ctrl-C, farm's own SIGTERM) reach runc, which forwards them; this process must
        // live on to record the exit.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = true);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true);

        ProcessIdentity? slirp = null;
        int exitCode;
        try
        {
            if (state.StartedAt is not null)
            {
                // What a killed supervisor left behind (a runc container, slirp4netns holding the ports, the namespace).
                await CleanUpAsync(state).ConfigureAwait(false);
            }

            using (var images = await LocalImageStore.OpenAsync(Store.StateDirectory, cancellationToken).ConfigureAwait(false))
            {
                await MountAsync(state, images, cancellationToken).ConfigureAwait(false);
            }

            if (state.Network == ContainerNetwork.Private)
            {
                await SlirpNetwork.CreateNamespaceAsync(id, cancellationToken).ConfigureAwait(false);
                slirp = await SlirpNetwork.StartAsync(id, state.Ports, cancellationToken).ConfigureAwait(false);
            }

            await SetTerminalAsync(state, cancellationToken).ConfigureAwait(false);
            var self = ProcessIdentity.Of(Environment.ProcessId);
            state = Store.Update(id, s => s with
            {
                Status = ContainerStatus.Running,
                StartedAt = DateTimeOffset.UtcNow,
                FinishedAt = null,
                ExitCode = null,
                Error = null,
                Supervisor = self,
                Slirp = slirp,
            }) ?? throw new NoSuchContainerException(id);

            exitCode = await RunRuncAsync(state, recordOutput).ConfigureAwait(false);
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

    /// <summary>
    /// Starts a supervisor for <paramref name="container"/> in a new session (not killed with the caller, not tied to
    /// its terminal), with its output going to the container's log, and waits until the container runs or ended.
    /// </summary>
    /// <param name="container">A created or exited container.</param>
    /// <param name="supervisorCommand">The command line that runs <see cref="SuperviseAsync"/> for the container id in a new farm process.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task<ContainerState> StartDetachedAsync(ContainerState container, IReadOnlyList<string> supervisorCommand, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(supervisorCommand);
        container = Refresh(container);
        if (container.Status == ContainerStatus.Running)
        {
            return container;
        }

        var start = new ProcessStartInfo("setsid") { UseShellExecute = false };
        // sh points the standard streams at the log before the supervisor starts, so it never holds the caller's.
        foreach (var a in (string[])["sh", "-c", "log=\"$1\"; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1", "sh", LogPath(container)])
        {
            start.ArgumentList.Add(a);
        }

        foreach (var a in supervisorCommand)
        {
            start.ArgumentList.Add(a);
        }

        Store.Update(container.Id, s => s with { Status = ContainerStatus.Created, ExitCode = null, Error = null, Supervisor = null });
        using (var process = Process.Start(start) ?? throw new ContainerRuntimeException("setsid did not start."))
        {
            var deadline = DateTime.UtcNow + StartTimeout;
            while (true)
            {
                // Whether the supervisor ended is read before the state, so its last record is seen.
                var supervisorEnded = process.HasExited;
                var now = Store.TryLoad(container.Id);
                if (now is null || now.Status == ContainerStatus.Exited)
                {
                    return now ?? container with { Status = ContainerStatus.Exited };
                }

                if (now.Status == ContainerStatus.Running && await RuncStatusAsync(container.Id).ConfigureAwait(false) is "running" or "paused")
                {
                    return now;
                }

                if (supervisorEnded && process.ExitCode != 0)
                {
                    throw new ContainerRuntimeException($"the supervisor of {container.Name} exited with code {process.ExitCode} before the container ran; see {LogPath(container)}.");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new ContainerRuntimeException($"{container.Name} did not start within {StartTimeout.TotalSeconds:0} s; see {LogPath(container)}.");
                }

                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The state with a dead supervisor taken into account: a container whose supervisor was killed is ended (and
    /// its leftovers removed), as a container dies with its containerd shim.
    /// </summary>
    public ContainerState Refresh(ContainerState container)
    {
        ArgumentNullException.ThrowIfNull(container);
        var now = Store.TryLoad(container.Id) ?? container;
        if (now.Status == ContainerStatus.Running && now.Supervisor?.IsAlive() != true)
        {
            CleanUpAsync(now).GetAwaiter().GetResult();
            return Store.Update(now.Id, s => s.Status == ContainerStatus.Running
                ? s with { Status = ContainerStatus.Exited, ExitCode = s.ExitCode ?? 137, FinishedAt = DateTimeOffset.UtcNow, Supervisor = null }
                : s) ?? now;
        }

        return now;
    }

    /// <summary>Runs a command in a running container (<c>runc exec</c>) with this process's standard streams.</summary>
    /// <returns>The command's exit code.</returns>
    public async Task<int> ExecAsync(ContainerState container, ContainerExecOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(options);
        container = Refresh(container);
        if (container.Status != ContainerStatus.Running)
        {
            throw new ContainerStateException(container.Name, "is not running; start it with farm start.");
        }

        var args = new List<string> { "exec" };
        if (options.Tty)
        {
            args.Add("--tty");
        }

        foreach (var e in options.Env)
        {
            args.Add("--env");
            args.Add(e.Contains('=', StringComparison.Ordinal) ? e : $"{e}={Environment.GetEnvironmentVariable(e)}");
        }

        if (options.WorkingDir is { } cwd)
        {
            args.Add("--cwd");
            args.Add(cwd);
        }

        if (options.User is { } userSpec)
        {
            var user = UserResolver.Resolve(RootfsPath(container), userSpec);
            args.Add("--user");
            args.Add($"{user.Uid}:{user.Gid}");
            foreach (var gid in user.AdditionalGids)
            {
                args.Add("--additional-gids");
                args.Add(gid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        args.Add(container.Id);
        args.AddRange(options.Args);
        using var process = StartRunc(args, inheritStdin: options.Interactive, inheritOutput: true);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return process.ExitCode;
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
            await RuncAsync(["kill", container.Id, container.StopSignal]).ConfigureAwait(false);
            if (await WaitEndedAsync(container, timeout, cancellationToken).ConfigureAwait(false))
            {
                return Refresh(container);
            }
        }

        await RuncAsync(["kill", container.Id, "KILL"]).ConfigureAwait(false);
        if (!await WaitEndedAsync(container, KillTimeout, cancellationToken).ConfigureAwait(false))
        {
            throw new ContainerRuntimeException($"{container.Name} did not end within {KillTimeout.TotalSeconds:0} s of SIGKILL; check runc --root {RuncRoot} state {container.Id}.");
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

        await CleanUpAsync(Store.TryLoad(container.Id) ?? container).ConfigureAwait(false);
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
    public async Task<LocalImage> CommitAsync(ContainerState container, ContainerCommitOptions options, LocalImageStore images, TextWriter warnings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(warnings);
        container = Refresh(container);
        var dir = Store.DirectoryOf(container.Id);
        var config = ImageConfig.Parse(await File.ReadAllBytesAsync(Path.Combine(dir, "image-config.json"), cancellationToken).ConfigureAwait(false));
        var baseManifest = OciJson.ParseManifest(await File.ReadAllBytesAsync(Path.Combine(dir, "image-manifest.json"), cancellationToken).ConfigureAwait(false));
        ApplyContainerSettings(config, container);
        ContainerChanges.Apply(config, options.Changes);

        var paused = false;
        if (options.Pause && container.Status == ContainerStatus.Running)
        {
            var (exit, output) = await RuncAsync(["pause", container.Id]).ConfigureAwait(false);
            paused = exit == 0;
            if (!paused)
            {
                await warnings.WriteLineAsync($"farm: warning: {container.Name} could not be paused ({output.Trim()}); committing while it runs, so files it writes meanwhile may be caught half-written.").ConfigureAwait(false);
            }
        }

        LayerResult layer;
        var temp = Path.Combine(images.Root, "blobs", "sha256", $".tmp-commit-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.GetDirectoryName(temp)!);
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                try
                {
                    layer = await LayerWriter.WriteUpperDirAsync(Path.Combine(dir, "u"), file, new LayerWriteOptions(), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    if (paused)
                    {
                        await RuncAsync(["resume", container.Id]).ConfigureAwait(false);
                    }
                }

                file.Position = 0;
                await images.Layout.PutAsync(layer.Descriptor, file, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(temp);
        }

        var now = DateTimeOffset.UtcNow;
        config.Created = now;
        if (options.Author is not null)
        {
            config.Author = options.Author;
        }

        config.AddLayer(layer.DiffId, new HistoryEntry
        {
            Created = now,
            CreatedBy = string.Join(' ', container.Args),
            Author = options.Author,
            Comment = options.Message,
        });
        return await images.AddAsync(config, [.. baseManifest.Layers, layer.Descriptor], options.Name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Copies the container's log to <paramref name="output"/>; with <paramref name="follow"/>, goes on copying what it
    /// writes until it ends.
    /// </summary>
    public async Task CopyLogAsync(ContainerState container, bool follow, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(output);
        var path = LogPath(container);
        if (!File.Exists(path))
        {
            if (!follow)
            {
                return;
            }

            await using (File.Create(path).ConfigureAwait(false))
            {
            }
        }

        var log = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 81920, useAsync: true);
        await using (log.ConfigureAwait(false))
        {
            while (true)
            {
                await log.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (!follow)
                {
                    return;
                }

                if (Refresh(container).Status != ContainerStatus.Running)
                {
                    // What it wrote before ending.
                    await log.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }

                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Whether <paramref name="path"/> is a mount point in this mount namespace.</summary>
    public static bool IsMountPoint(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        return File.ReadLines("/proc/self/mountinfo").Any(line => line.Split(' ') is { Length: > 4 } f && f[4] == full);
    }

    private static void ApplyContainerSettings(ImageConfig config, ContainerState container)
    {
        // docker commit keeps how the container was run: its command, -e, -w and -u become the image's.
        if (container.Command is { } command)
        {
            config.Cmd = command;
        }

        if (container.EnvOverrides.Count > 0)
        {
            config.Env = container.Env;
        }

        if (container.WorkingDirOverride is { } cwd)
        {
            config.WorkingDir = cwd;
        }

        if (container.UserOverride is { } user)
        {
            config.User = user;
        }
    }

    private async Task RecordExitAsync(string id, int exitCode, string? error, bool runcDeleted = false)
    {
        var state = Store.TryLoad(id);
        if (state is not null)
        {
            await CleanUpAsync(state, runcDeleted).ConfigureAwait(false);
        }

        var ended = Store.Update(id, s => s with
        {
            Status = ContainerStatus.Exited,
            ExitCode = exitCode,
            Error = error,
            FinishedAt = DateTimeOffset.UtcNow,
            Supervisor = null,
            Slirp = null,
        });
        if (ended is { AutoRemove: true })
        {
            Store.Delete(id);
        }
    }

    /// <summary>Idempotent: runc's container, slirp4netns, the network namespace and the overlay mount go.</summary>
    private async Task CleanUpAsync(ContainerState state, bool runcDeleted = false)
    {
        if (!runcDeleted)
        {
            await RuncAsync(["delete", "--force", state.Id]).ConfigureAwait(false);
        }

        SlirpNetwork.Stop(state.Slirp, state.Id);
        await SlirpNetwork.DeleteNamespaceAsync(state.Id).ConfigureAwait(false);
        Unmount(RootfsPath(state));
    }

    private async Task<int> RunRuncAsync(ContainerState state, bool recordOutput)
    {
        var bundle = Path.Combine(Store.DirectoryOf(state.Id), "b");
        var log = Path.Combine(bundle, "runc.log");
        File.Delete(log);
        var args = new List<string> { "--log", log, "--log-format", "json", "run", "--bundle", bundle, state.Id };
        // A terminal is runc's to drive; otherwise runc already copies the streams through pipes, and farm tees them.
        var tee = recordOutput && !UsesTerminal(state);
        using var process = StartRunc(args, inheritStdin: state.Interactive || state.Tty, inheritOutput: !tee);
        if (tee)
        {
            var file = new FileStream(LogPath(state), FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                using var gate = new SemaphoreSlim(1, 1);
                await Task.WhenAll(
                    TeeAsync(process.StandardOutput.BaseStream, Console.OpenStandardOutput(), file, gate),
                    TeeAsync(process.StandardError.BaseStream, Console.OpenStandardError(), file, gate)).ConfigureAwait(false);
            }
        }

        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        if (process.ExitCode != 0 && RuncRunner.RuncError(log) is { } error)
        {
            throw new ContainerStartException(state.Name, state.Args, error);
        }

        return process.ExitCode;
    }

    private static bool UsesTerminal(ContainerState state) => state.Tty && !Console.IsInputRedirected;

    /// <summary>Copies a stream to the console and the log until it ends; a console gone (closed pipe) only stops that copy.</summary>
    private static async Task TeeAsync(Stream from, Stream console, FileStream log, SemaphoreSlim gate)
    {
        var buffer = new byte[16384];
        var toConsole = true;
        int read;
        while ((read = await from.ReadAsync(buffer, CancellationToken.None).ConfigureAwait(false)) > 0)
        {
            if (toConsole)
            {
                try
                {
                    await console.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None).ConfigureAwait(false);
                    await console.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (IOException)
                {
                    toConsole = false;
                }
            }

            await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await log.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None).ConfigureAwait(false);
                await log.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        }
    }

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

    private async Task<IReadOnlyList<string>> LowerDirectoriesAsync(ContainerState state, LocalImageStore images, CancellationToken cancellationToken)
    {
        // Extracted once per machine and kept (no eviction budget): a container's layers must outlive its image's name.
        // One farm process at a time: a LayerStore opening removes the half-extracted layers it finds, which would
        // be another process's extraction in progress.
        using var exclusive = ContainerStore.LockFile(Path.Combine(Store.StateDirectory, "layers.lock"));
        var store = new LayerStore(Path.Combine(Store.StateDirectory, "layers"), long.MaxValue, async (layer, _, target, ct) =>
        {
            var blob = await images.Layout.OpenReadAsync(Digest.Parse(layer.Digest), ct).ConfigureAwait(false);
            await using (blob.ConfigureAwait(false))
            {
                var applied = await LayerReader.ApplyAsync(blob, target, new LayerApplyOptions { OverlayLowerDir = true }, ct).ConfigureAwait(false);
                if (applied.DiffId.ToString() != layer.DiffId)
                {
                    throw new DigestMismatchException(Digest.Parse(layer.DiffId), applied.DiffId, $"The uncompressed layer {layer.Digest}");
                }
            }
        });
        var dirs = new List<string>();
        foreach (var layer in state.Layers)
        {
            using var lease = await store.AcquireAsync(layer, images.Root, cancellationToken).ConfigureAwait(false);
            dirs.Add(lease.Directory);
        }

        dirs.Reverse();
        if (dirs.Count == 0)
        {
            var empty = Path.Combine(Store.DirectoryOf(state.Id), "e");
            Directory.CreateDirectory(empty);
            dirs.Add(empty);
        }

        return dirs;
    }

    /// <summary>Docker's init layer: the mount points runc needs, created once over the image in a layer of their own.</summary>
    private static void CreateInitLayer(string dir, IReadOnlyList<string> imageLowers)
    {
        var init = Path.Combine(dir, "i");
        var work = Path.Combine(dir, "iw");
        var merged = Path.Combine(dir, "m");
        foreach (var d in (string[])[init, work, merged])
        {
            Directory.CreateDirectory(d);
        }

        UnixFile.Chmod(init, 0x1ED /* 0755 */);
        MountOverlay(imageLowers, init, work, merged);
        try
        {
            foreach (var d in InitDirectories)
            {
                var path = Sandbox.RootfsPath.Resolve(merged, d);
                if (UnixFile.Lstat(path) is null)
                {
                    Directory.CreateDirectory(path);
                    UnixFile.Chmod(path, 0x1ED);
                }
            }

            foreach (var f in InitFiles)
            {
                var path = Sandbox.RootfsPath.Resolve(merged, f);
                if (UnixFile.Lstat(path) is null && Directory.Exists(Path.GetDirectoryName(path)))
                {
                    File.WriteAllBytes(path, []);
                    UnixFile.Chmod(path, 0x1A4 /* 0644 */);
                }
            }
        }
        finally
        {
            Unmount(merged);
            Directory.Delete(work, recursive: true);
        }
    }

    private async Task MountAsync(ContainerState state, LocalImageStore images, CancellationToken cancellationToken)
    {
        var dir = Store.DirectoryOf(state.Id);
        var merged = Path.Combine(dir, "m");
        if (IsMountPoint(merged))
        {
            return;
        }

        var lowers = await LowerDirectoriesAsync(state, images, cancellationToken).ConfigureAwait(false);
        var upper = Path.Combine(dir, "u");
        var work = Path.Combine(dir, "w");
        if (!Directory.Exists(upper))
        {
            Directory.CreateDirectory(upper);
            UnixFile.Chmod(upper, 0x1ED);
        }

        Directory.CreateDirectory(work);
        Directory.CreateDirectory(merged);
        MountOverlay([Path.Combine(dir, "i"), .. lowers], upper, work, merged);
    }

    private static void MountOverlay(IReadOnlyList<string> lowers, string upper, string work, string merged)
    {
        var data = OverlaySnapshotter.MountData(lowers, upper, work);
        if (data.Length > OverlaySnapshotter.MaxMountDataLength)
        {
            throw new ContainerRuntimeException($"the overlay mount options for {lowers.Count} layers are {data.Length} bytes, over the kernel's limit; use a shorter FARM_STATE_DIR or an image with fewer layers.");
        }

        if (Native.Mount("overlay", merged, "overlay", Native.MsNoDev, data) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new ContainerRuntimeException($"mounting the container's overlay at {merged} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); farm run needs root and a kernel with overlayfs.");
        }
    }

    private static void Unmount(string merged)
    {
        if (!Directory.Exists(merged) || !IsMountPoint(merged))
        {
            return;
        }

        if (Native.Umount2(merged, 0) != 0 && Marshal.GetLastPInvokeError() == Native.EBusy)
        {
            // A process still holds a file in it; detach so the mount goes once that process exits.
            Native.Umount2(merged, Native.MntDetach);
        }
    }

    private async Task WriteBundleAsync(ContainerState state, CancellationToken cancellationToken)
    {
        var dir = Store.DirectoryOf(state.Id);
        var merged = Path.Combine(dir, "m");
        var user = UserResolver.Resolve(merged, state.User);
        RuncRunner.EnsureWorkingDirectory(merged, state.WorkingDir);

        var resolv = Path.Combine(dir, "resolv.conf");
        var hosts = Path.Combine(dir, "hosts");
        var hostname = Path.Combine(dir, "hostname");
        var hostResolv = File.Exists("/etc/resolv.conf") ? await File.ReadAllTextAsync("/etc/resolv.conf", cancellationToken).ConfigureAwait(false) : "";
        await File.WriteAllTextAsync(resolv, state.Network == ContainerNetwork.Private ? $"nameserver {SlirpNetwork.DnsAddress}\n" : hostResolv, cancellationToken).ConfigureAwait(false);
        var ownAddress = state.Network == ContainerNetwork.Private ? SlirpNetwork.GuestAddress : "127.0.1.1";
        await File.WriteAllTextAsync(hosts, $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ownAddress}\t{state.Hostname}\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(hostname, state.Hostname + "\n", cancellationToken).ConfigureAwait(false);
        foreach (var f in (string[])[resolv, hosts, hostname])
        {
            UnixFile.Chmod(f, 0x1A4);
        }

        var env = state.Env.ToList();
        if (state.Tty && !env.Any(e => e.StartsWith("TERM=", StringComparison.Ordinal)))
        {
            env.Add("TERM=xterm");
        }

        var run = new RunSpec
        {
            Args = state.Args,
            RootfsPath = merged,
            Env = env,
            WorkingDirectory = state.WorkingDir,
            User = state.User,
            Hostname = state.Hostname,
            Network = state.Network == ContainerNetwork.Host ? NetworkMode.Host : NetworkMode.None,
            Mounts = [new BindMount(hostname, "/etc/hostname")],
        };
        var spec = RuntimeSpecGenerator.Generate(run, user, new RuntimeSpecGenerator.NetworkFiles(resolv, hosts));
        var namespaces = spec.Linux.Namespaces.Where(n => n.Type != "network").ToList();
        if (state.Network == ContainerNetwork.Private)
        {
            namespaces.Add(new RuntimeNamespace("network", SlirpNetwork.NamespacePath(state.Id)));
        }
        else if (state.Network == ContainerNetwork.None)
        {
            namespaces.Add(new RuntimeNamespace("network"));
        }

        spec = spec with
        {
            Process = spec.Process with { Terminal = state.Tty },
            Linux = spec.Linux with { Namespaces = namespaces },
        };
        var bundle = Directory.CreateDirectory(Path.Combine(dir, "b")).FullName;
        await File.WriteAllBytesAsync(
            Path.Combine(bundle, "config.json"),
            JsonSerializer.SerializeToUtf8Bytes(spec, RuntimeSpecJsonContext.Default.RuntimeSpec),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A container made with <c>-t</c> gets its terminal only when this run has one to give: <c>farm start</c>
    /// runs it detached, where runc would refuse a terminal without a console socket.
    /// </summary>
    private async Task SetTerminalAsync(ContainerState state, CancellationToken cancellationToken)
    {
        var path = Path.Combine(Store.DirectoryOf(state.Id), "b", "config.json");
        var spec = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false), RuntimeSpecJsonContext.Default.RuntimeSpec)
            ?? throw new ContainerRuntimeException($"the runc bundle {path} is empty; remove the container and run it again.");
        var terminal = UsesTerminal(state);
        if (spec.Process.Terminal != terminal)
        {
            spec = spec with { Process = spec.Process with { Terminal = terminal } };
            await File.WriteAllBytesAsync(path, JsonSerializer.SerializeToUtf8Bytes(spec, RuntimeSpecJsonContext.Default.RuntimeSpec), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<string?> RuncStatusAsync(string id)
    {
        var (exit, output) = await RuncAsync(["state", id]).ConfigureAwait(false);
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

    private async Task<(int ExitCode, string Output)> RuncAsync(IReadOnlyList<string> args)
    {
        using var process = StartRunc(args, inheritStdin: false, inheritOutput: false);
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        return (process.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
    }

    private Process StartRunc(IReadOnlyList<string> args, bool inheritStdin, bool inheritOutput)
    {
        Directory.CreateDirectory(RuncRoot);
        var start = new ProcessStartInfo(_runcPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = !inheritStdin,
            RedirectStandardOutput = !inheritOutput,
            RedirectStandardError = !inheritOutput,
        };
        start.ArgumentList.Add("--root");
        start.ArgumentList.Add(RuncRoot);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        try
        {
            var process = Process.Start(start) ?? throw new ContainerRuntimeException($"runc ({_runcPath}) did not start.");
            if (!inheritStdin)
            {
                // A closed pipe reads as EOF, like </dev/null.
                process.StandardInput.Close();
            }

            return process;
        }
        catch (Win32Exception e)
        {
            throw new ContainerRuntimeException($"runc could not be started as '{_runcPath}': {e.Message}. Install it: apt-get install runc.", e);
        }
    }
}
