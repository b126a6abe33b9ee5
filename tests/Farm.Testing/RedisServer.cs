using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Farm.Oci.Net;

namespace Farm.Testing;

/// <summary>
/// A redis-server of a test's own, on a free loopback port, in the foreground of a child process: tests that stop,
/// restart or empty Redis use one, never the shared instance infra/up.sh starts. Without persistence, like a Redis
/// whose data is lost when it restarts (the fault tests ride out); infra/redis.sh runs the durable one.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string _directory;
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;

    private RedisServer(int port, string directory)
    {
        Port = port;
        _directory = directory;
    }

    public int Port { get; }

    /// <summary>The StackExchange.Redis connection string, <c>127.0.0.1:PORT</c>.</summary>
    public string Configuration => "127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture);

    public static async Task<RedisServer> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("farm-redis-").FullName;
        var server = new RedisServer(FreePorts.Tcp(), directory);
        await server.StartProcessAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>Stops the server (SIGKILL: nothing is saved, as a crash or a lost volume).</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Starts the server again on the same port, empty.</summary>
    public Task StartAgainAsync() => StartProcessAsync();

    public string OutputTail() => FarmProcess.Tail(_output);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _process?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task StartProcessAsync()
    {
        _process?.Dispose();
        var start = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        foreach (var argument in new[] { "--bind", "127.0.0.1", "--port", Port.ToString(CultureInfo.InvariantCulture), "--dir", _directory, "--save", string.Empty, "--appendonly", "no" })
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is missing: run infra/install.sh (apt-get install -y redis-server).", e);
        }

        _process.OutputDataReceived += (_, e) => Add(e.Data);
        _process.ErrorDataReceived += (_, e) => Add(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Wait.UntilAsync(AnswersAsync, TimeSpan.FromSeconds(30), () => $"redis-server to accept connections on {Configuration}{Environment.NewLine}{OutputTail()}").ConfigureAwait(false);
    }

    private async Task<bool> AnswersAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", Port).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }
}
