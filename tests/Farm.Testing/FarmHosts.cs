using System.Globalization;
using System.Security.Cryptography;

namespace Farm.Testing;

/// <summary>
/// Simulated machines made by <c>infra/hosts.sh</c>: network namespaces on one bridge of their own, network
/// <c>10.214.N.0/24</c> (N picked per run, never TestHost's 10.213.x.x), each host with its address: a services host
/// running the registry (<see cref="Registry"/>), Redis and RabbitMQ on its address, two coordinator hosts, four worker
/// hosts and a client host. The hosts have no default route, so what runs there reaches the other hosts and nothing
/// else; the test reaches them through this machine's end of the bridge. Disposing ends every process in the hosts
/// and removes them, after a failed test too.
/// </summary>
public sealed class FarmHosts : IAsyncDisposable
{
    private readonly Dictionary<string, string> _values;

    private FarmHosts(string id, Dictionary<string, string> values)
    {
        Id = id;
        _values = values;
    }

    /// <summary>The set's id: its namespaces are <c>farm-ID-ROLE</c>, its bridge <c>fbID</c>.</summary>
    public string Id { get; }

    /// <summary>The services host: registry, Redis, RabbitMQ.</summary>
    public Host Services => Get("services");

    public Host Coord1 => Get("coord1");

    public Host Coord2 => Get("coord2");

    public Host Worker1 => Get("worker1");

    public Host Worker2 => Get("worker2");

    public Host Worker3 => Get("worker3");

    public Host Worker4 => Get("worker4");

    public Host Client => Get("client");

    /// <summary>The registry on the services host, <c>HOST:5000</c> (plain HTTP: an insecure registry to every client).</summary>
    public string Registry => _values["FARM_HOSTS_REGISTRY"];

    /// <summary>Redis on the services host, as a StackExchange.Redis connection string.</summary>
    public string Redis => _values["FARM_HOSTS_REDIS"];

    /// <summary>The RabbitMQ user's password: a secret no process may print.</summary>
    public string RabbitMqPassword => File.ReadAllText(_values["FARM_HOSTS_RABBITMQ_PASSWORD_FILE"]).Trim();

    /// <summary>RabbitMQ on the services host as the farm's user (not guest, which only works on loopback), with its password.</summary>
    public string RabbitMqUrl =>
        $"amqp://{_values["FARM_HOSTS_RABBITMQ_USER"]}:{Uri.EscapeDataString(RabbitMqPassword)}@{_values["FARM_HOSTS_RABBITMQ"]}/";

    /// <summary>nsenter's arguments that run a command in <paramref name="netns"/> (its network only: runc needs this machine's /sys and cgroups).</summary>
    public static IReadOnlyList<string> EnterArguments(string netns) => [$"--net=/run/netns/{netns}", "--"];

    /// <summary>The command prefix that runs a command on a host.</summary>
    public static IReadOnlyList<string> EnterCommand(string netns) => ["nsenter", .. EnterArguments(netns)];

    /// <summary>
    /// Brings up a set of hosts with a fresh id on a network no route of this machine uses; fails with the script's
    /// message when ip, nsenter or a service is missing (infra/install.sh).
    /// </summary>
    public static async Task<FarmHosts> UpAsync()
    {
        InvalidOperationException? last = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
            var net = RandomNumberGenerator.GetInt32(1, 255).ToString(CultureInfo.InvariantCulture);
            try
            {
                await Script(id, net, "up").ConfigureAwait(false);
                var values = (await Script(id, net, "env").ConfigureAwait(false))
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(l => l.Split('=', 2))
                    .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
                return new FarmHosts(id, values);
            }
            catch (InvalidOperationException e)
            {
                // Half-made hosts go; a network another run took is tried again elsewhere.
                last = e;
                await Script(id, net, "down").ConfigureAwait(false);
                if (!e.Message.Contains("is in use", StringComparison.Ordinal))
                {
                    throw;
                }
            }
        }

        throw new InvalidOperationException("infra/hosts.sh up found no free 10.214.N.0/24 network", last);
    }

    /// <summary>Cuts <paramref name="host"/>'s link to the bridge (its veth end on this machine down): a machine unplugged, its processes left running.</summary>
    public Task CutLinkAsync(Host host) => Tool.RunAsync("ip", "link", "set", host.Link, "down");

    /// <summary>
    /// Serves the files of <paramref name="directory"/> over HTTP on <paramref name="host"/> (busybox httpd on its
    /// address and <paramref name="port"/>), as a file server elsewhere on the network; waits until it answers.
    /// Disposing the result stops it (so does disposing the hosts).
    /// </summary>
    public async Task<IAsyncDisposable> ServeFilesAsync(Host host, string directory, int port)
    {
        var busybox = File.Exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
        var start = new System.Diagnostics.ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (IEnumerable<string>)[.. EnterArguments(host.Netns), busybox, "httpd", "-f", "-p", $"{host.Address}:{port}", "-h", directory])
        {
            start.ArgumentList.Add(arg);
        }

        var server = new FileServer(System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException("busybox httpd did not start: apt-get install busybox-static"));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    using var response = await http.GetAsync(new Uri($"http://{host.Address}:{port}/")).ConfigureAwait(false);
                    return true;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(30),
            () => $"busybox httpd on {host.Role} ({host.Address}:{port})").ConfigureAwait(false);
        return server;
    }

    public async ValueTask DisposeAsync() =>
        await Script(Id, _values["FARM_HOSTS_MACHINE"].Split('.')[2], "down").ConfigureAwait(false);

    private Host Get(string role)
    {
        var upper = role.ToUpperInvariant();
        return new Host(role, _values[$"FARM_HOSTS_{upper}"], _values[$"FARM_HOSTS_{upper}_NETNS"], _values[$"FARM_HOSTS_{upper}_LINK"]);
    }

    private static Task<string> Script(string id, string net, string verb) =>
        Tool.RunAsync("env", $"FARM_HOSTS_ID={id}", $"FARM_HOSTS_NET={net}", Path.Combine(RepoPaths.RepoRoot, "infra", "hosts.sh"), verb);

    /// <summary>One simulated machine: its role, its address, its network namespace and its link's end on this machine.</summary>
    public sealed record Host(string Role, string Address, string Netns, string Link);

    private sealed class FileServer(System.Diagnostics.Process process) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            await process.WaitForExitAsync().ConfigureAwait(false);
            process.Dispose();
        }
    }
}
