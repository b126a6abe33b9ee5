using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
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
    private readonly IReadOnlyList<string> _arguments;
    private readonly string _credentials;
    private Process? _process;

    private RedisServer(int port, string directory, IReadOnlyList<string> arguments, string credentials)
    {
        Port = port;
        _directory = directory;
        _arguments = arguments;
        _credentials = credentials;
    }

    public int Port { get; }

    /// <summary>
    /// The StackExchange.Redis connection string: <c>127.0.0.1:PORT</c>, and for <see cref="StartTlsAsync"/>
    /// <c>,user=USER,password=PASSWORD,ssl=true</c>.
    /// </summary>
    public string Configuration => "127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture) + _credentials;

    public static async Task<RedisServer> StartAsync()
    {
        var directory = Directory.CreateTempSubdirectory("farm-redis-").FullName;
        var port = FreePorts.Tcp();
        var server = new RedisServer(port, directory, ["--port", port.ToString(CultureInfo.InvariantCulture)], string.Empty);
        await server.StartProcessAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>
    /// A Redis as a shared farm runs it: TLS only (no plain port) with <paramref name="certificates"/>' server
    /// certificate, the <c>default</c> user off and one ACL user <paramref name="user"/> with <paramref name="password"/>.
    /// </summary>
    public static async Task<RedisServer> StartTlsAsync(TestCertificates certificates, string user, string password)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        var directory = Directory.CreateTempSubdirectory("farm-redis-tls-").FullName;
        var port = FreePorts.Tcp();
        var server = new RedisServer(
            port,
            directory,
            [
                "--port", "0", "--tls-port", port.ToString(CultureInfo.InvariantCulture),
                "--tls-cert-file", certificates.CertificatePath, "--tls-key-file", certificates.KeyPath, "--tls-ca-cert-file", certificates.CaPath,
                "--tls-auth-clients", "no",
                "--user", "default", "off",
                "--user", user, "on", ">" + password, "~*", "&*", "+@all",
            ],
            $",user={user},password={password},ssl=true");
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
        _process = FarmProcess.StartService(
            "redis-server",
            "redis-server",
            new[] { "--bind", "127.0.0.1", "--dir", _directory, "--save", string.Empty, "--appendonly", "no" }.Concat(_arguments),
            _directory,
            _output);
        await Wait.UntilAsync(() => FarmProcess.AnswersAsync(Port), TimeSpan.FromSeconds(30), () => $"redis-server to accept connections on {Configuration}{Environment.NewLine}{OutputTail()}").ConfigureAwait(false);
    }
}
