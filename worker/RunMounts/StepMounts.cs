using System.Globalization;
using Farm.Containers.Sandbox;
using Farm.Containers.Snapshots;
using Farm.Contracts;
using Farm.Oci.IO;
using Farm.Worker.Copy;

namespace Farm.Worker.RunMounts;

/// <summary>
/// The <c>RUN --mount</c>s of one step made real on the worker, as bind and tmpfs mounts of its sandbox and
/// environment variables, and undone when the step ends. Nothing of a mount reaches the layer: binds and caches live
/// outside the overlay, secrets on a tmpfs of their own, and the mount points runc creates are stubs the snapshot
/// removes (<see cref="MountStubs"/>).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>bind: the layers of a stage or an image (or the context tar) under an overlay snapshot of their own, so a
/// <c>rw</c> bind writes into that snapshot's upper directory, which is thrown away.</item>
/// <item>cache: a directory of <see cref="CacheMounts"/>; a new one gets the mount's mode, owner and <c>from</c> content.</item>
/// <item>tmpfs: a tmpfs runc mounts.</item>
/// <item>secret: a file on a tmpfs the worker mounts for the step (mode 0700, never on disk), bound read-only at its
/// target with the mount's mode (0400) and owner; or an environment variable (<c>env=</c>), which like every variable of
/// the step is in the runc bundle's config for as long as the step runs.</item>
/// <item>ssh: the agent socket the client passed (the local farm only), bound at its target, <c>SSH_AUTH_SOCK</c> set.</item>
/// </list>
/// </remarks>
public sealed class StepMounts : IAsyncDisposable
{
    /// <summary>The default target of an ssh mount, numbered as BuildKit numbers them.</summary>
    public const string SshAgentTarget = "/run/buildkit/ssh_agent.";

    private readonly List<Func<ValueTask>> _undo = [];
    private readonly List<CacheLease> _caches = [];

    private StepMounts()
    {
    }

    /// <summary>Bind mounts for the sandbox.</summary>
    public List<BindMount> Binds { get; } = [];

    /// <summary>tmpfs mounts for the sandbox.</summary>
    public List<TmpfsMount> Tmpfs { get; } = [];

    /// <summary><c>KEY=value</c> entries to add to the step's environment (secret <c>env=</c>, <c>SSH_AUTH_SOCK</c>).</summary>
    public List<string> Env { get; } = [];

    /// <summary>Sets up <paramref name="mounts"/> for one step.</summary>
    /// <param name="mounts">The step's mounts.</param>
    /// <param name="context">What the worker lends for it.</param>
    /// <param name="cancellationToken">Stops the set-up; what was made is undone.</param>
    /// <exception cref="RunMountException">A mount could not be made (FARM3120).</exception>
    /// <exception cref="BuildSecretUnavailableException">A required secret or agent is not there (FARM3121).</exception>
    public static async Task<StepMounts> CreateAsync(IReadOnlyList<RunStepMount> mounts, StepMountContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(mounts);
        ArgumentNullException.ThrowIfNull(context);
        var result = new StepMounts();
        try
        {
            BuildSecretValues? secrets = null;
            string? secretDir = null;
            var sshCount = 0;
            for (var i = 0; i < mounts.Count; i++)
            {
                var mount = mounts[i];
                switch (mount.Type)
                {
                    case "bind":
                        var root = await result.ViewAsync(mount.From ?? throw new RunMountException($"the bind mount at {mount.Target} names nothing to bind"), context, cancellationToken).ConfigureAwait(false);
                        var source = SourceIn(root, mount.Source, mount.Target!);
                        result.Binds.Add(new BindMount(source, mount.Target!, mount.ReadOnly));
                        break;
                    case "cache":
                        result.Binds.Add(new BindMount(await result.CacheAsync(mount, context, cancellationToken).ConfigureAwait(false), mount.Target!, mount.ReadOnly));
                        break;
                    case "tmpfs":
                        result.Tmpfs.Add(new TmpfsMount(mount.Target!, mount.SizeBytes));
                        break;
                    case "secret":
                        secrets ??= await context.Secrets.GetAsync(context.BuildId, cancellationToken).ConfigureAwait(false);
                        if (!secrets.Secrets.TryGetValue(mount.Id ?? string.Empty, out var value))
                        {
                            if (mount.Required)
                            {
                                throw new BuildSecretUnavailableException($"the step mounts the secret '{mount.Id}' (required), which this worker could not get for build {context.BuildId}. Build again with --secret id={mount.Id},src=FILE; on a farm, check that the worker reaches the coordinator that accepted the build.");
                            }

                            break;
                        }

                        if (mount.Env is { } env)
                        {
                            result.Env.Add(env + "=" + System.Text.Encoding.UTF8.GetString(value));
                        }

                        if (mount.Target is { } target)
                        {
                            secretDir ??= result.SecretsTmpfs(context);
                            var file = Path.Combine(secretDir, i.ToString(CultureInfo.InvariantCulture));
                            await File.WriteAllBytesAsync(file, value, cancellationToken).ConfigureAwait(false);
                            UnixFile.Lchown(file, (uint)mount.Uid, (uint)mount.Gid);
                            UnixFile.Chmod(file, (uint)(mount.Mode ?? 0x100 /* 0400 */));
                            result.Binds.Add(new BindMount(file, target, ReadOnly: true));
                        }

                        break;
                    case "ssh":
                        secrets ??= await context.Secrets.GetAsync(context.BuildId, cancellationToken).ConfigureAwait(false);
                        var n = sshCount++;
                        if (!secrets.SshAgents.TryGetValue(mount.Id ?? "default", out var socket) || !File.Exists(socket))
                        {
                            if (mount.Required)
                            {
                                throw new BuildSecretUnavailableException($"the step mounts the SSH agent '{mount.Id}' (required), which this build was not given or whose socket is gone. Build again with --ssh {mount.Id} on the local farm (with ssh-agent running and SSH_AUTH_SOCK set).");
                            }

                            break;
                        }

                        var sshTarget = mount.Target ?? SshAgentTarget + (n + 1).ToString(CultureInfo.InvariantCulture);
                        result.Binds.Add(new BindMount(socket, sshTarget, ReadOnly: false));
                        if (n == 0)
                        {
                            result.Env.Add("SSH_AUTH_SOCK=" + sshTarget);
                        }

                        break;
                    default:
                        throw new RunMountException($"unknown mount type '{mount.Type}'; this worker knows bind, cache, tmpfs, secret and ssh (is it older than the coordinator?)");
                }
            }

            return result;
        }
        catch
        {
            await result.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The step succeeded: its caches may be published to the farm when the mounts are undone (a failed step's never
    /// are).
    /// </summary>
    public void Succeeded()
    {
        foreach (var cache in _caches)
        {
            cache.Succeeded();
        }
    }

    /// <summary>Undoes every mount, last made first.</summary>
    public async ValueTask DisposeAsync()
    {
        for (var i = _undo.Count - 1; i >= 0; i--)
        {
            await _undo[i]().ConfigureAwait(false);
        }

        _undo.Clear();
    }

    /// <summary>A read-write overlay of the layers (or the context) a bind or a cache seed shows; its writes go nowhere.</summary>
    private async Task<string> ViewAsync(CopySource from, StepMountContext context, CancellationToken cancellationToken)
    {
        var leases = new List<Containers.Snapshots.LayerLease>();
        _undo.Add(() =>
        {
            foreach (var lease in leases)
            {
                lease.Dispose();
            }

            return ValueTask.CompletedTask;
        });
        var layers = await context.AcquireAsync(from, leases, cancellationToken).ConfigureAwait(false);
        var view = await context.Snapshotter.CreateAsync([.. layers.AsEnumerable().Reverse()], cancellationToken).ConfigureAwait(false);
        _undo.Add(view.DisposeAsync);
        return view.MergedDir;
    }

    private async Task<string> CacheAsync(RunStepMount mount, StepMountContext context, CancellationToken cancellationToken)
    {
        var lease = await context.Caches.AcquireAsync(mount.Tenant, mount.Id ?? mount.Target!, mount.Sharing, context.BlobStore, mount.ReadOnly, cancellationToken).ConfigureAwait(false);
        _undo.Add(() =>
        {
            lease.Dispose();
            return ValueTask.CompletedTask;
        });
        _caches.Add(lease);
        if (lease.Restored)
        {
            // Another worker's snapshot: the mount's owner and mode as for a new one, its content as that worker left it.
            UnixFile.Lchown(lease.Directory, (uint)mount.Uid, (uint)mount.Gid);
            UnixFile.Chmod(lease.Directory, (uint)(mount.Mode ?? 0x1ED /* 0755 */));
        }
        else if (lease.Fresh)
        {
            try
            {
                if (mount.From is { } from)
                {
                    var root = await ViewAsync(from, context, cancellationToken).ConfigureAwait(false);
                    var seed = SourceIn(root, mount.Source, mount.Target!);
                    await context.Copy.CopyAsync(
                        new CopyRequest { SourceRoot = root, SourceKind = CopySourceKind.RootFilesystem, Sources = [seed[root.Length..] is { Length: > 0 } s ? s : "/"], Destination = "/", TargetRoot = lease.Directory },
                        cancellationToken).ConfigureAwait(false);
                }

                UnixFile.Lchown(lease.Directory, (uint)mount.Uid, (uint)mount.Gid);
                UnixFile.Chmod(lease.Directory, (uint)(mount.Mode ?? 0x1ED /* 0755 */));
            }
            catch (Exception e) when (e is not OperationCanceledException and not Contracts.FarmException)
            {
                Directory.Delete(lease.Directory, recursive: true);
                throw new RunMountException($"the cache '{mount.Id}' could not be made at {mount.Target}: {e.Message}", e);
            }
            catch
            {
                // A half-made cache must not pass for a fresh one next time.
                Directory.Delete(lease.Directory, recursive: true);
                throw;
            }
        }

        return lease.Directory;
    }

    /// <summary>A tmpfs for this step's secret files, mode 0700, unmounted and removed when the step ends.</summary>
    private string SecretsTmpfs(StepMountContext context)
    {
        var dir = Path.Combine(context.Scratch, context.JobId.ToString("N") + ".secrets");
        Directory.CreateDirectory(dir);
        try
        {
            MountPoints.MountTmpfs(dir, "mode=0700,size=1m");
        }
        catch (IOException e)
        {
            Directory.Delete(dir);
            throw new RunMountException($"a tmpfs for the step's secrets could not be mounted at {dir}: {e.Message}; the worker must run as root", e);
        }

        _undo.Add(() =>
        {
            MountPoints.Unmount(dir);
            Directory.Delete(dir, recursive: true);
            return ValueTask.CompletedTask;
        });
        return dir;
    }

    /// <summary>The host path of <paramref name="source"/> inside <paramref name="root"/>, which must exist.</summary>
    private static string SourceIn(string root, string? source, string target)
    {
        var path = RootfsPath.Resolve(root, source ?? "/");
        return UnixFile.Lstat(path) is not null
            ? path
            : throw new RunMountException($"the mount at {target} binds '{source}', which does not exist in what it binds from; fix source= (a path in the stage, image or context named by from=)");
    }
}

/// <summary>What the worker lends a step's mounts.</summary>
public sealed record StepMountContext
{
    /// <summary>The build whose secrets a step may mount.</summary>
    public required Guid BuildId { get; init; }

    /// <summary>The job, for names of scratch files.</summary>
    public required Guid JobId { get; init; }

    /// <summary>The worker's scratch directory.</summary>
    public required string Scratch { get; init; }

    /// <summary>Makes overlay views of layers.</summary>
    public required OverlaySnapshotter Snapshotter { get; init; }

    /// <summary>Extracts (once) the layers or the context tar of a source and leases them for the step.</summary>
    public required Func<CopySource, List<Containers.Snapshots.LayerLease>, CancellationToken, Task<List<string>>> AcquireAsync { get; init; }

    /// <summary>The worker's cache directories.</summary>
    public required CacheMounts Caches { get; init; }

    /// <summary>The job's blob store, where a farm-wide cache's snapshots are kept; null keeps caches on this worker.</summary>
    public string? BlobStore { get; init; }

    /// <summary>Copies a cache's <c>from</c> content.</summary>
    public required CopyOperation Copy { get; init; }

    /// <summary>Where the build's secrets come from.</summary>
    public required IBuildSecretSource Secrets { get; init; }
}
