using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Farm.Oci.Net;

namespace Farm.Testing;

/// <summary>
/// A RabbitMQ node of a test's own with only a TLS listener (AMQPS) on a free loopback port, its certificate from
/// <see cref="TestCertificates"/>. The shared node infra/up.sh starts on 127.0.0.1:5672 is never touched: other suites
/// may be using it. The node runs as user rabbitmq (as Debian's service does) under its own node name, distribution
/// port, database and log directories, without plugins; it boots in seconds and is stopped on dispose. Its one user,
/// <see cref="User"/>, has every permission on the virtual host <c>/</c>.
/// </summary>
public sealed class RabbitMqNode : IAsyncDisposable
{
    private const string Server = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private const string Ctl = "/usr/lib/rabbitmq/bin/rabbitmqctl";

    private readonly ConcurrentQueue<string> _output = new();
    private readonly string _directory;
    private Process? _process;

    private RabbitMqNode(string directory, int port)
    {
        _directory = directory;
        TlsPort = port;
        NodeName = $"farmtest-{Guid.NewGuid().ToString("N")[..10]}@localhost";
        Password = "farm-" + Guid.NewGuid().ToString("N");
    }

    public string NodeName { get; }

    public int TlsPort { get; }

    public string User => "farm";

    public string Password { get; }

    /// <summary>The node's user over AMQPS: <c>amqps://farm:PASSWORD@127.0.0.1:PORT/</c>.</summary>
    public string AmqpsUrl => Url(User, Password);

    /// <summary>An AMQPS URL of this node for <paramref name="user"/>.</summary>
    public string Url(string user, string password) =>
        $"amqps://{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@127.0.0.1:{TlsPort.ToString(CultureInfo.InvariantCulture)}/";

    /// <summary>Starts the node with <paramref name="certificates"/> (copied into its directory, owned by rabbitmq) and waits until its TLS port answers.</summary>
    public static async Task<RabbitMqNode> StartAsync(TestCertificates certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        if (!File.Exists(Server))
        {
            throw new InvalidOperationException($"{Server} is missing: run infra/install.sh (apt-get install -y rabbitmq-server).");
        }

        var directory = Directory.CreateTempSubdirectory("farm-rabbitmq-").FullName;
        var node = new RabbitMqNode(directory, FreePorts.Tcp());
        try
        {
            await node.StartProcessAsync(certificates).ConfigureAwait(false);
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return node;
    }

    /// <summary>
    /// A user with the given permissions (regular expressions, as <c>rabbitmqctl set_permissions</c>) on <c>/</c>; returns its AMQPS URL.
    /// </summary>
    public async Task<string> AddUserAsync(string user, string password, string configure, string write, string read)
    {
        await CtlAsync("add_user", user, password).ConfigureAwait(false);
        await CtlAsync("set_permissions", "-p", "/", user, configure, write, read).ConfigureAwait(false);
        return Url(user, password);
    }

    public string OutputTail() => FarmProcess.Tail(_output);

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } process)
        {
            try
            {
                await CtlAsync("stop").ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // Killed below.
            }

            using var stopped = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(stopped.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }
        }

        _process?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task StartProcessAsync(TestCertificates certificates)
    {
        var tls = Path.Combine(_directory, "tls");
        Directory.CreateDirectory(tls);
        foreach (var (from, name) in new[] { (certificates.CaPath, "ca.crt"), (certificates.CertificatePath, "server.crt"), (certificates.KeyPath, "server.key") })
        {
            File.Copy(from, Path.Combine(tls, name));
        }

        Directory.CreateDirectory(Path.Combine(_directory, "mnesia"));
        Directory.CreateDirectory(Path.Combine(_directory, "log"));
        var config = Path.Combine(_directory, "rabbitmq.conf");
        await File.WriteAllTextAsync(config, $"""
            listeners.tcp = none
            listeners.ssl.1 = 127.0.0.1:{TlsPort.ToString(CultureInfo.InvariantCulture)}
            ssl_options.cacertfile = {Path.Combine(tls, "ca.crt")}
            ssl_options.certfile = {Path.Combine(tls, "server.crt")}
            ssl_options.keyfile = {Path.Combine(tls, "server.key")}
            ssl_options.verify = verify_none
            ssl_options.fail_if_no_peer_cert = false
            default_user = {User}
            default_pass = {Password}
            loopback_users = none

            """).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(_directory, "enabled_plugins"), "[].\n").ConfigureAwait(false);
        // rabbitmq-server runs as user rabbitmq: it must reach and own its directories.
        File.SetUnixFileMode(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        await Tool.RunAsync("chown", "-R", "rabbitmq:rabbitmq", _directory).ConfigureAwait(false);

        var start = RabbitMqUser(Server);
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["RABBITMQ_NODENAME"] = NodeName,
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(_directory, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(_directory, "log"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(_directory, "rabbitmq.pid"),
            ["RABBITMQ_CONFIG_FILE"] = config,
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(_directory, "enabled_plugins"),
            ["RABBITMQ_DIST_PORT"] = FreePorts.Tcp().ToString(CultureInfo.InvariantCulture),
        })
        {
            start.ArgumentList.Insert(start.ArgumentList.Count - 1, $"{key}={value}");
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("rabbitmq-server did not start.");
        FarmProcess.Collect(_process, _output);
        await Wait.UntilAsync(
            async () => _process.HasExited ? throw new InvalidOperationException($"rabbitmq-server exited with {_process.ExitCode}{Environment.NewLine}{OutputTail()}") : await FarmProcess.AnswersAsync(TlsPort).ConfigureAwait(false),
            TimeSpan.FromMinutes(3),
            () => $"rabbitmq-server {NodeName} to listen on 127.0.0.1:{TlsPort} (TLS){Environment.NewLine}{OutputTail()}").ConfigureAwait(false);
    }

    /// <summary><c>runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq ... COMMAND</c>: the Erlang cookie and file ownership of Debian's service.</summary>
    private static ProcessStartInfo RabbitMqUser(string command)
    {
        var start = new ProcessStartInfo("runuser")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-u", "rabbitmq", "--", "env", "HOME=/var/lib/rabbitmq", "ERL_EPMD_ADDRESS=127.0.0.1", command })
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    private async Task CtlAsync(params string[] arguments)
    {
        var start = RabbitMqUser(Ctl);
        start.ArgumentList.Add("-n");
        start.ArgumentList.Add(NodeName);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("rabbitmqctl did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"rabbitmqctl {arguments[0]} on {NodeName} exited with {process.ExitCode}: {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
        }
    }
}
