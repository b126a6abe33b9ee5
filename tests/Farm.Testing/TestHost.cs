using System.Diagnostics;
using System.Security.Cryptography;

namespace Farm.Testing;

/// <summary>
/// A host made by the test: a network namespace joined to this machine by a veth pair, the machine's end
/// <c>10.213.N.1/30</c> and the host's <c>10.213.N.2/30</c>. It stands for another machine on the network (the internet,
/// for a RUN step that downloads); tests send traffic only to such hosts and to loopback. Disposing removes it, with
/// every process started in it.
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private readonly List<Process> _processes = [];

    /// <summary>The network of hosts that stand for other machines.</summary>
    public const string OrdinaryPrefix = "10.213";

    /// <summary>The link-local network (169.254.0.0/16), where a cloud's metadata service answers: a host there stands for it.</summary>
    public const string LinkLocalPrefix = "169.254";

    private TestHost(string name, string prefix, int subnet)
    {
        Name = name;
        Address = $"{prefix}.{subnet}.2";
        MachineAddress = $"{prefix}.{subnet}.1";
    }

    /// <summary>The namespace's name (<c>ip netns</c>).</summary>
    public string Name { get; }

    /// <summary>The host's address.</summary>
    public string Address { get; }

    /// <summary>This machine's address on the link to the host.</summary>
    public string MachineAddress { get; }

    /// <summary>
    /// Creates the namespace, the link and the addresses; fails with what to install when ip is missing. The subnet is
    /// one no interface of this machine holds yet, chosen under a machine-wide lock: two hosts made at once, by this
    /// process or by another test run, never share an address (a shared one would route one host's traffic to the
    /// other).
    /// </summary>
    public static async Task<TestHost> CreateAsync() => await CreateAsync(OrdinaryPrefix);

    /// <summary>As <see cref="CreateAsync()"/>, the host's /30 under <paramref name="prefix"/> (<see cref="OrdinaryPrefix"/>, <see cref="LinkLocalPrefix"/>).</summary>
    public static async Task<TestHost> CreateAsync(string prefix)
    {
        using var allocation = await LockAsync();
        var used = await Tool.RunAsync("ip", "-o", "-4", "addr", "show");
        var free = Enumerable.Range(1, 249).Where(n => !used.Contains($" {prefix}.{n}.", StringComparison.Ordinal)).ToArray();
        if (free.Length == 0)
        {
            throw new InvalidOperationException($"Every {prefix}.N.0/30 subnet is taken: remove leftover test hosts (ip netns list | grep farm-th-).");
        }

        var subnet = free[RandomNumberGenerator.GetInt32(free.Length)];
        var host = new TestHost("farm-th-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), prefix, subnet);
        var outside = "fth" + host.Name[^8..];
        try
        {
            await Tool.RunAsync("ip", "netns", "add", host.Name);
            await Tool.RunAsync("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.Name);
            await Tool.RunAsync("ip", "addr", "add", host.MachineAddress + "/30", "dev", outside);
            await Tool.RunAsync("ip", "link", "set", outside, "up");
            await Tool.RunAsync("ip", "-n", host.Name, "addr", "add", host.Address + "/30", "dev", "eth0");
            await Tool.RunAsync("ip", "-n", host.Name, "link", "set", "eth0", "up");
            await Tool.RunAsync("ip", "-n", host.Name, "link", "set", "lo", "up");
            await Tool.RunAsync("ip", "-n", host.Name, "route", "add", "default", "via", host.MachineAddress);
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Address}, this machine {MachineAddress})";

    /// <summary>
    /// An exclusive lock on a file under /run, shared by every test process of this machine: flock(1) takes it (waiting
    /// as long as another holder keeps it) and holds it until disposing closes its standard input.
    /// </summary>
    private static async Task<IDisposable> LockAsync()
    {
        Directory.CreateDirectory("/run/lock");
        var start = new ProcessStartInfo("flock", ["/run/lock/farm-test-hosts.lock", "sh", "-c", "echo locked; exec cat >/dev/null"])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        var holder = Process.Start(start) ?? throw new InvalidOperationException("flock did not start: apt-get install util-linux");
        if (await holder.StandardOutput.ReadLineAsync() != "locked")
        {
            holder.Dispose();
            throw new InvalidOperationException("flock could not take /run/lock/farm-test-hosts.lock");
        }

        return new Held(holder);
    }

    private sealed class Held(Process holder) : IDisposable
    {
        public void Dispose()
        {
            holder.StandardInput.Close();
            holder.WaitForExit();
            holder.Dispose();
        }
    }

    /// <summary>
    /// Serves the files of <paramref name="directory"/> over HTTP on <paramref name="port"/> of the host (busybox
    /// httpd), and waits until it answers.
    /// </summary>
    public async Task ServeHttpAsync(string directory, int port)
    {
        var busybox = File.Exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
        var start = new ProcessStartInfo("ip", ["netns", "exec", Name, busybox, "httpd", "-f", "-p", $"{Address}:{port}", "-h", directory])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        _processes.Add(Process.Start(start) ?? throw new InvalidOperationException("busybox httpd did not start: apt-get install busybox-static"));
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    using var response = await client.GetAsync(new Uri($"http://{Address}:{port}/"));
                    return true;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
                catch (TaskCanceledException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(30),
            () => $"busybox httpd on the test host {Address}:{port}");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        // Deleting the namespace removes its veth end and with it the machine's.
        await Process.Start("ip", ["netns", "delete", Name]).WaitForExitAsync();
    }
}
