using System.Globalization;
using System.Security.Cryptography;

namespace Farm.Containers.Sandbox;

/// <summary>A private network ready for one RUN step: its namespace and the slirp4netns serving it.</summary>
/// <param name="Id">The network's id (<see cref="SlirpNetwork.NamespaceName"/> is made from it).</param>
/// <param name="NamespacePath">The bind-mounted namespace runc joins.</param>
/// <param name="Slirp">The slirp4netns process.</param>
internal sealed record SandboxNetwork(string Id, string NamespacePath, ProcessIdentity Slirp);

/// <summary>
/// The private networks of RUN steps (<see cref="NetworkMode.Private"/>), one per step and never reused, so nothing a
/// step leaves in its network reaches another. Making one (two <c>ip</c> calls and slirp4netns opening its API
/// socket) and removing one costs tens of milliseconds, paid off a step's path: a few are kept ready, and a used one is
/// removed in the background. Each has a record under the runner's state directory until it is gone, so a worker that
/// died leaves nothing that its next start does not remove (<see cref="RemoveOrphansAsync"/>).
/// </summary>
internal sealed class SandboxNetworks : IAsyncDisposable
{
    private readonly string _records;
    private readonly int _spares;
    private readonly int? _slirpGroup;
    private readonly Queue<SandboxNetwork> _ready = new();
    private readonly List<Task> _background = [];
    private readonly Lock _lock = new();
    private int _making;
    private bool _disposed;

    public SandboxNetworks(string recordsDirectory, int spares, int? slirpGroup)
    {
        _records = recordsDirectory;
        _spares = spares;
        _slirpGroup = slirpGroup;
    }

    /// <summary>A network no step used yet: a ready one when there is, else one made now.</summary>
    /// <exception cref="ContainerNetworkException">ip or slirp4netns failed.</exception>
    public async Task<SandboxNetwork> TakeAsync(CancellationToken cancellationToken)
    {
        SandboxNetwork? ready = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            while (ready is null && _ready.TryDequeue(out var candidate))
            {
                if (candidate.Slirp.IsAlive())
                {
                    ready = candidate;
                }
                else
                {
                    Background(RemoveAsync(candidate));
                }
            }

            Refill();
        }

        return ready ?? await MakeAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Hands back a network a step used: it is removed in the background, never given out again.</summary>
    public void Release(SandboxNetwork network)
    {
        lock (_lock)
        {
            Background(RemoveAsync(network));
        }
    }

    /// <summary>Removes the networks records name that no running runner holds: those of a worker that died.</summary>
    public static async Task RemoveOrphansAsync(string recordsDirectory)
    {
        if (!Directory.Exists(recordsDirectory))
        {
            return;
        }

        foreach (var record in Directory.EnumerateFiles(recordsDirectory))
        {
            var text = await File.ReadAllTextAsync(record).ConfigureAwait(false);
            var slirp = int.TryParse(text.Trim(), CultureInfo.InvariantCulture, out var pid) && IsSlirp(pid) ? ProcessIdentity.Of(pid) : null;
            SlirpNetwork.Stop(slirp, Path.GetFileName(record));
            await SlirpNetwork.DeleteNamespaceAsync(Path.GetFileName(record)).ConfigureAwait(false);
            File.Delete(record);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task[] pending;
        lock (_lock)
        {
            _disposed = true;
            while (_ready.TryDequeue(out var network))
            {
                Background(RemoveAsync(network));
            }

            pending = [.. _background];
        }

        await Task.WhenAll(pending).ConfigureAwait(false);
    }

    /// <summary>Starts making spares up to the wanted number; called under the lock.</summary>
    private void Refill()
    {
        while (!_disposed && _ready.Count + _making < _spares)
        {
            _making++;
            Background(MakeSpareAsync());
        }
    }

    private async Task MakeSpareAsync()
    {
        SandboxNetwork? network = null;
        try
        {
            network = await MakeAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (ContainerNetworkException)
        {
            // The next step makes its own network and reports why that failed.
        }

        lock (_lock)
        {
            _making--;
            if (network is not null)
            {
                if (_disposed)
                {
                    Background(RemoveAsync(network));
                }
                else
                {
                    _ready.Enqueue(network);
                }
            }
        }
    }

    private async Task<SandboxNetwork> MakeAsync(CancellationToken cancellationToken)
    {
        // "s" and 16 hex digits: the namespace takes 12 characters of it, the API socket 16.
        var id = "s" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        Directory.CreateDirectory(_records);
        var record = Path.Combine(_records, id);
        await File.WriteAllTextAsync(record, string.Empty, cancellationToken).ConfigureAwait(false);
        try
        {
            await SlirpNetwork.CreateNamespaceAsync(id, cancellationToken).ConfigureAwait(false);
            var slirp = await SlirpNetwork.StartAsync(id, [], _slirpGroup, cancellationToken).ConfigureAwait(false);
            await File.WriteAllTextAsync(record, slirp.Pid.ToString(CultureInfo.InvariantCulture), CancellationToken.None).ConfigureAwait(false);
            return new SandboxNetwork(id, SlirpNetwork.NamespacePath(id), slirp);
        }
        catch
        {
            await SlirpNetwork.DeleteNamespaceAsync(id).ConfigureAwait(false);
            File.Delete(record);
            throw;
        }
    }

    private async Task RemoveAsync(SandboxNetwork network)
    {
        SlirpNetwork.Stop(network.Slirp, network.Id);
        await SlirpNetwork.DeleteNamespaceAsync(network.Id).ConfigureAwait(false);
        File.Delete(Path.Combine(_records, network.Id));
    }

    /// <summary>Tracks a background task so that disposal waits for it; called under the lock.</summary>
    private void Background(Task task)
    {
        _background.RemoveAll(t => t.IsCompleted);
        _background.Add(task);
    }

    private static bool IsSlirp(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim() == "slirp4netns";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
