using System.Globalization;
using Farm.Contracts;
using Farm.Containers.Sandbox;
using Farm.Coordinator.Builds;
using Farm.Oci.Layers;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// The local farm daemon's own duties: one daemon per state directory (a lock held for the process's life, so two
/// CLIs that race to start one end up with one), the socket's permissions (owner only, or a granted group), the
/// version the CLI compares with its own, and stopping after <see cref="LocalFarmOptions.IdleTimeout"/> with no build
/// and no request.
/// </summary>
public sealed partial class LocalFarmDaemon : BackgroundService
{
    private readonly LocalFarmOptions _options;
    private readonly FileStream _lock;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private IHostApplicationLifetime? _lifetime;
    private BuildService? _builds;
    private ILogger? _logger;
    private int _requests;
    private long _lastActivity = Environment.TickCount64;

    private LocalFarmDaemon(LocalFarmOptions options, FileStream held)
    {
        _options = options;
        _lock = held;
    }

    /// <summary>The version a CLI compares with the daemon it would start: the identity of this build of the daemon.</summary>
    public static string Version { get; } = FarmBuildIdentity.Of(AppContext.BaseDirectory);

    /// <summary>Takes the state directory's daemon lock and clears a dead daemon's socket.</summary>
    /// <exception cref="LocalFarmRunningException">Another daemon holds the lock (FARM5017).</exception>
    public static LocalFarmDaemon Claim(LocalFarmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(options.StateDirectory);
        FileStream held;
        try
        {
            held = new FileStream(Path.Combine(options.StateDirectory, "farmd.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new LocalFarmRunningException(options.SocketPath);
        }

        // The lock is ours: a socket file left here belongs to a daemon that died.
        File.Delete(options.SocketPath);
        return new LocalFarmDaemon(options, held);
    }

    /// <summary>Counts a request as activity for as long as it runs (an event stream followed for an hour is one).</summary>
    public IDisposable Request()
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Exchange(ref _lastActivity, Environment.TickCount64);
        return new Activity(this);
    }

    public object Describe() => new
    {
        version = Version,
        pid = Environment.ProcessId,
        socket = _options.SocketPath,
        stateDirectory = _options.StateDirectory,
        log = _options.LogPath,
        started = _started,
        idleTimeoutSeconds = _options.IdleTimeout.TotalSeconds,
        running = _builds?.RunningCount ?? 0,
    };

    /// <summary>Stops the daemon (<c>farm daemon stop</c>): the running builds' grains stop with it.</summary>
    public void Stop() => _lifetime?.StopApplication();

    /// <summary>Wired by the host: what the daemon watches and stops.</summary>
    public void Attach(IHostApplicationLifetime lifetime, BuildService builds, ILogger logger)
    {
        _lifetime = lifetime;
        _builds = builds;
        _logger = logger;
        lifetime.ApplicationStarted.Register(Secure);
    }

    public override void Dispose()
    {
        base.Dispose();
        try
        {
            File.Delete(_options.SocketPath);
        }
        catch (IOException)
        {
            // The next daemon clears it under the lock.
        }

        _lock.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.IdleTimeout <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Clamp(_options.IdleTimeout.TotalSeconds / 10, 0.2, 5)));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (Volatile.Read(ref _requests) > 0 || (_builds?.RunningCount ?? 0) > 0)
            {
                Interlocked.Exchange(ref _lastActivity, Environment.TickCount64);
                continue;
            }

            if (Environment.TickCount64 - Interlocked.Read(ref _lastActivity) >= _options.IdleTimeout.TotalMilliseconds)
            {
                if (_logger is not null)
                {
                    LogIdle(_logger, _options.IdleTimeout);
                }

                _lifetime?.StopApplication();
                return;
            }
        }
    }

    /// <summary>The socket is the key to running builds as this daemon's user: its owner only, or a granted group.</summary>
    private void Secure()
    {
        var socket = _options.SocketPath;
        if (_options.SocketGroup is { Length: > 0 } group)
        {
            uint gid;
            try
            {
                // This machine's /etc/group, read as a RUN step's user is resolved in its image.
                gid = UserResolver.Resolve("/", "0:" + group).Gid;
            }
            catch (UnknownUserException e)
            {
                throw new LocalFarmConfigurationException($"Farm:Local:SocketGroup '{group}' is no group of this machine ({e.Message}). Name an existing group.");
            }

            if (Interop.FchownAt(Interop.AtFdCwd, socket, uint.MaxValue, gid, 0) != 0)
            {
                throw new LocalFarmConfigurationException($"Farm:Local:SocketGroup '{group}' cannot own {socket}: {Interop.ErrorText(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}.");
            }

            File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        }
        else
        {
            File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        if (_logger is not null)
        {
            LogListening(_logger, socket, Environment.ProcessId, Version, _options.IdleTimeout);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Local farm daemon {Pid} (version {Version}) listening on {Socket}; stops after {IdleTimeout} idle")]
    private static partial void LogListening(ILogger logger, string socket, int pid, string version, TimeSpan idleTimeout);

    [LoggerMessage(Level = LogLevel.Information, Message = "Local farm daemon idle for {IdleTimeout}: stopping")]
    private static partial void LogIdle(ILogger logger, TimeSpan idleTimeout);

    private sealed class Activity(LocalFarmDaemon daemon) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Exchange(ref daemon._lastActivity, Environment.TickCount64);
                Interlocked.Decrement(ref daemon._requests);
            }
        }
    }
}

/// <summary>FARM5017: a local farm daemon already runs on this state directory.</summary>
public sealed class LocalFarmRunningException(string socket)
    : FarmException(FarmErrorCodes.LocalFarmRunning, $"A local farm daemon already runs here (socket {socket}). Use it, or stop it first with farm daemon stop.");

/// <summary>FARM5018: the local farm's settings are unusable; the message says which and what to set.</summary>
public sealed class LocalFarmConfigurationException(string message)
    : FarmException(FarmErrorCodes.LocalFarmConfiguration, message);
