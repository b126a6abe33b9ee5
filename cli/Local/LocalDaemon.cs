using System.Diagnostics;
using System.Net.Sockets;
using Farm.Cli.Progress;
using Farm.Cli.Remote;
using Farm.Contracts;
using Farm.Oci.Images;

namespace Farm.Cli.Local;

/// <summary>
/// The local farm daemon as the CLI sees it: the coordinator process with <c>Farm:Local</c> (a worker inside, the API
/// on <c>farmd.sock</c> in the state directory), started on demand in a session of its own, restarted when it is
/// another build of farm than this CLI's, and stopped by <c>farm daemon stop</c> or its idle timeout.
/// </summary>
internal sealed class LocalDaemon
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    public LocalDaemon(string? stateDirectory = null)
    {
        StateDirectory = Path.GetFullPath(stateDirectory ?? LocalImageStore.DefaultStateDirectory());
        Socket = Environment.GetEnvironmentVariable("FARM_SOCKET") is { Length: > 0 } socket ? socket : Path.Combine(StateDirectory, "farmd.sock");
    }

    public string StateDirectory { get; }

    public string Socket { get; }

    public string LogPath => Path.Combine(StateDirectory, "farmd.log");

    /// <summary>The daemon's API, started first when none answers (or one of another build of farm, when idle).</summary>
    /// <exception cref="LocalFarmUnavailableException">It cannot be started, or its socket refuses this user.</exception>
    public async Task<RemoteFarm> ConnectAsync(TextWriter? status, CancellationToken cancellationToken)
    {
        var program = Program();
        var farm = RemoteFarm.OverSocket(Socket);
        try
        {
            var running = await ProbeAsync(farm, cancellationToken).ConfigureAwait(false);
            if (running is not null && BuildProgress.Str(running, "version") == program.Version)
            {
                return farm;
            }

            if (running is not null)
            {
                if (BuildProgress.Num(running, "running") > 0)
                {
                    throw new LocalFarmUnavailableException($"the local farm daemon (pid {BuildProgress.Num(running, "pid")}) is another build of farm than this command and has builds running. Let them finish, then run farm daemon stop (the next command starts the new one)");
                }

                status?.Write("farm: restarting the local farm daemon: it is another build of farm than this command\n");
                await farm.StopDaemonAsync(cancellationToken).ConfigureAwait(false);
                await WaitStoppedAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (File.Exists(Socket))
            {
                status?.Write($"farm: the local farm daemon had stopped without cleaning up (see {LogPath}); starting it again\n");
            }

            Start(program);
            await WaitReadyAsync(farm, cancellationToken).ConfigureAwait(false);
            return farm;
        }
        catch
        {
            farm.Dispose();
            throw;
        }
    }

    /// <summary><c>GET /version</c>, or null when nothing listens on the socket.</summary>
    /// <exception cref="LocalFarmUnavailableException">The socket exists but this user may not use it.</exception>
    public async Task<System.Text.Json.Nodes.JsonNode?> ProbeAsync(RemoteFarm farm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(farm);
        try
        {
            return await farm.VersionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RemoteFarmException e) when (e.InnerException is HttpRequestException { InnerException: SocketException socket })
        {
            return socket.SocketErrorCode switch
            {
                SocketError.AccessDenied => throw new LocalFarmUnavailableException(
                    $"this user may not use the local farm daemon's socket {Socket} (it belongs to its owner). Run farm as the daemon's user (sudo farm ...), have the daemon grant your group (--Farm:Local:SocketGroup=GROUP, as the docker group), or use another state directory (FARM_STATE_DIR)", e),
                _ => null,
            };
        }
    }

    /// <summary>Starts the daemon in a session of its own (a Ctrl-C in this terminal must not reach it), output to its log.</summary>
    private void Start(DaemonProgram program)
    {
        Directory.CreateDirectory(StateDirectory);
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec setsid -f \"$0\" \"$@\" </dev/null >>\"$FARMD_LOG\" 2>&1");
        foreach (var arg in program.Command)
        {
            start.ArgumentList.Add(arg);
        }

        start.ArgumentList.Add("--Farm:Local:Enabled=true");
        start.ArgumentList.Add("--Farm:Local:StateDirectory=" + StateDirectory);
        start.ArgumentList.Add("--Farm:Local:Socket=" + Socket);
        start.Environment["FARMD_LOG"] = LogPath;
        using var shell = Process.Start(start) ?? throw new LocalFarmUnavailableException($"/bin/sh did not start {program.Command[0]}");
        shell.WaitForExit();
    }

    private async Task WaitReadyAsync(RemoteFarm farm, CancellationToken cancellationToken)
    {
        var logStart = File.Exists(LogPath) ? new FileInfo(LogPath).Length : 0;
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < StartTimeout)
        {
            if (File.Exists(Socket) && await ProbeAsync(farm, cancellationToken).ConfigureAwait(false) is not null)
            {
                return;
            }

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }

        throw new LocalFarmUnavailableException($"the local farm daemon did not answer on {Socket} within {StartTimeout.TotalSeconds:0} s. Its log says:\n{Tail(logStart)}");
    }

    private async Task WaitStoppedAsync(CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (File.Exists(Socket))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new LocalFarmUnavailableException($"the local farm daemon did not stop within 60 s (see {LogPath})");
            }

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }
    }

    private string Tail(long from)
    {
        try
        {
            using var log = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            log.Position = Math.Max(from, log.Length - 4000);
            return new StreamReader(log).ReadToEnd().TrimEnd();
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>
    /// The daemon this CLI starts: <c>FARM_DAEMON</c> (a <c>farm-coordinator</c> executable or dll), else the one
    /// published beside the CLI (<c>../coordinator/farm-coordinator</c>, as <c>./farm</c> lays them out).
    /// </summary>
    public static DaemonProgram Program()
    {
        var path = Environment.GetEnvironmentVariable("FARM_DAEMON") is { Length: > 0 } configured
            ? Path.GetFullPath(configured)
            : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "coordinator", "farm-coordinator"));
        if (!File.Exists(path) && File.Exists(path + ".dll"))
        {
            path += ".dll";
        }

        if (!File.Exists(path))
        {
            throw new LocalFarmUnavailableException($"the local farm daemon {path} is missing. Build it (./farm does; or dotnet build Farm.sln) or point FARM_DAEMON at farm-coordinator");
        }

        string[] command = path.EndsWith(".dll", StringComparison.Ordinal) ? ["dotnet", path] : [path];
        return new DaemonProgram(command, FarmBuildIdentity.Of(Path.GetDirectoryName(path)!));
    }

    internal sealed record DaemonProgram(IReadOnlyList<string> Command, string Version);
}

/// <summary>The local farm daemon cannot be reached or started (FARM5019).</summary>
public sealed class LocalFarmUnavailableException(string reason, Exception? inner = null)
    : FarmException(FarmErrorCodes.LocalFarmUnavailable, reason, inner);
