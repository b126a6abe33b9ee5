using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Farm.Contracts;

namespace Farm.Containers.Sandbox;

/// <summary>
/// Keeps RUN steps in private networks away from this machine and from the farm's own services. slirp4netns makes a
/// step's outbound connections from the worker's network stack: it refuses this machine's loopback itself
/// (<c>--disable-host-loopback</c>), but a step could still reach every service bound to another address of this
/// machine, and the farm's Redis, RabbitMQ and registry on other machines. So slirp4netns runs with a group of its own
/// (<see cref="Group"/>, no user needs to be in it), and one iptables chain, matched on that group for the packets
/// this machine sends (<c>-m owner --gid-owner</c>), rejects what it sends to this machine's addresses (DNS excepted:
/// slirp4netns forwards the step's lookups to the resolvers of <c>/etc/resolv.conf</c>, which may be local), to
/// link-local addresses (a cloud's metadata service, which would hand a step the worker machine's credentials) and to the
/// denied networks. The chain is written whole in one <c>iptables-restore</c> transaction, so a step never meets it
/// half-written. IPv4 only: a step's private network has no IPv6.
/// </summary>
public sealed class SandboxFirewall : IDisposable
{
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _install = new(1, 1);
    private readonly HashSet<IPNetwork> _denied = [];
    private readonly HashSet<string> _deniedHosts = new(StringComparer.OrdinalIgnoreCase);
    private int _installed = -1;
    private int _version;

    /// <summary>A firewall for slirp4netns processes of group <paramref name="group"/>, rejecting <paramref name="deniedNetworks"/> (CIDR or address).</summary>
    /// <exception cref="SandboxFirewallException">A network is not an IPv4 address or CIDR block (FARM3109).</exception>
    public SandboxFirewall(int group, IEnumerable<string> deniedNetworks)
    {
        ArgumentNullException.ThrowIfNull(deniedNetworks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(group);
        Group = group;
        foreach (var network in deniedNetworks)
        {
            _denied.Add(ParseNetwork(network));
        }
    }

    /// <summary>IPv4 link-local addresses (a cloud's metadata service at 169.254.169.254 among them): always refused.</summary>
    public const string LinkLocal = "169.254.0.0/16";

    /// <summary>The group slirp4netns runs with; the firewall matches its packets by it.</summary>
    public int Group { get; }

    /// <summary>The iptables chain of this group (filter table).</summary>
    public string Chain => "FARM-SBX-" + Group.ToString(CultureInfo.InvariantCulture);

    /// <summary>The networks rejected besides this machine's own addresses.</summary>
    public IReadOnlyCollection<IPNetwork> DeniedNetworks
    {
        get
        {
            lock (_lock)
            {
                return [.. _denied];
            }
        }
    }

    /// <summary>
    /// Writes the chain (replacing what it held) and makes sure OUTPUT sends slirp4netns's packets through it. Call
    /// before the first step runs; again after the denied networks changed (<see cref="DenyHostAsync"/> does).
    /// </summary>
    /// <exception cref="SandboxFirewallException">iptables is missing or refused the rules (FARM3109).</exception>
    public async Task InstallAsync(CancellationToken cancellationToken)
    {
        await _install.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            int version;
            List<IPNetwork> denied;
            lock (_lock)
            {
                version = _version;
                denied = [.. _denied];
            }

            if (version == _installed)
            {
                return;
            }

            await IptablesAsync("iptables-restore", ["-w", "--noflush"], Rules(denied), cancellationToken).ConfigureAwait(false);
            string[] jump = ["OUTPUT", "-m", "owner", "--gid-owner", Group.ToString(CultureInfo.InvariantCulture), "-j", Chain];
            if (!await TryIptablesAsync(["-w", "-C", .. jump], cancellationToken).ConfigureAwait(false))
            {
                await IptablesAsync("iptables", ["-w", "-I", .. jump], null, cancellationToken).ConfigureAwait(false);
            }

            _installed = version;
        }
        finally
        {
            _install.Release();
        }
    }

    /// <summary>
    /// Adds the addresses <paramref name="host"/> resolves to (a farm service a worker learns of from its jobs, such as
    /// the cache store's registry) and installs the chain again when that added any. Loopback needs no rule.
    /// </summary>
    /// <exception cref="SandboxFirewallException">iptables refused the rules (FARM3109).</exception>
    public async Task DenyHostAsync(string host, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        lock (_lock)
        {
            if (!_deniedHosts.Add(host))
            {
                return;
            }
        }

        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, AddressFamily.InterNetwork, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // A host that does not resolve here is not one a step can reach through this machine either.
            return;
        }

        lock (_lock)
        {
            foreach (var address in addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)))
            {
                if (_denied.Add(new IPNetwork(address, 32)))
                {
                    _version++;
                }
            }
        }

        await InstallAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the OUTPUT jump and the chain (for tests and tools; a worker leaves them for its next start).</summary>
    public async Task RemoveAsync(CancellationToken cancellationToken)
    {
        string[] jump = ["OUTPUT", "-m", "owner", "--gid-owner", Group.ToString(CultureInfo.InvariantCulture), "-j", Chain];
        while (await TryIptablesAsync(["-w", "-D", .. jump], cancellationToken).ConfigureAwait(false))
        {
        }

        await TryIptablesAsync(["-w", "-F", Chain], cancellationToken).ConfigureAwait(false);
        await TryIptablesAsync(["-w", "-X", Chain], cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _installed = -1;
        }
    }

    /// <summary>Frees the install lock; the rules stay (see <see cref="RemoveAsync"/>).</summary>
    public void Dispose() => _install.Dispose();

    /// <summary>The chain as <c>iptables-restore</c> input: declaring it empties it, in the same transaction that refills it.</summary>
    internal string Rules(IEnumerable<IPNetwork> denied)
    {
        var rules = new StringBuilder();
        rules.Append("*filter\n").Append(':').Append(Chain).Append(" - [0:0]\n");
        foreach (var protocol in (string[])["udp", "tcp"])
        {
            rules.Append(CultureInfo.InvariantCulture, $"-A {Chain} -m addrtype --dst-type LOCAL -p {protocol} --dport 53 -j RETURN\n");
        }

        foreach (var type in (string[])["LOCAL", "BROADCAST", "MULTICAST"])
        {
            rules.Append(CultureInfo.InvariantCulture, $"-A {Chain} -m addrtype --dst-type {type} -j REJECT\n");
        }

        // Link-local: where a cloud's metadata service hands out the worker machine's own credentials.
        rules.Append(CultureInfo.InvariantCulture, $"-A {Chain} -d {LinkLocal} -j REJECT\n");

        foreach (var network in denied.OrderBy(n => n.ToString(), StringComparer.Ordinal))
        {
            rules.Append(CultureInfo.InvariantCulture, $"-A {Chain} -d {network} -j REJECT\n");
        }

        return rules.Append("COMMIT\n").ToString();
    }

    /// <summary>An IPv4 address or CIDR block of <c>Farm:Worker:Sandbox:DeniedNetworks</c>.</summary>
    /// <exception cref="SandboxFirewallException">It is neither (FARM3109).</exception>
    public static IPNetwork ParseNetwork(string text)
    {
        var trimmed = text.Trim();
        if (IPNetwork.TryParse(trimmed, out var network) && network.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
        {
            return network;
        }

        if (IPAddress.TryParse(trimmed, out var address) && address.AddressFamily == AddressFamily.InterNetwork)
        {
            return new IPNetwork(address, 32);
        }

        throw new SandboxFirewallException($"The denied network '{text}' is not an IPv4 address or CIDR block (like 10.20.0.0/16). Fix Farm:Worker:Sandbox:DeniedNetworks.");
    }

    private static async Task<bool> TryIptablesAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        try
        {
            await IptablesAsync("iptables", args, null, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (SandboxFirewallException)
        {
            return false;
        }
    }

    private static async Task IptablesAsync(string tool, IReadOnlyList<string> args, string? input, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            throw new SandboxFirewallException($"{tool} could not be started: {e.Message}. Install iptables (apt-get install iptables), or set Farm:Worker:Sandbox:Firewall=false to let RUN steps reach this machine's addresses and the farm's services.", e);
        }

        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            if (input is not null)
            {
                await process.StandardInput.WriteAsync(input.AsMemory(), cancellationToken).ConfigureAwait(false);
            }

            process.StandardInput.Close();
            await stdout.ConfigureAwait(false);
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new SandboxFirewallException($"{tool} {string.Join(' ', args)} failed: {(await stderr.ConfigureAwait(false)).Trim().TrimEnd('.')}. The worker needs root (CAP_NET_ADMIN) for the firewall of its RUN steps' networks; or set Farm:Worker:Sandbox:Firewall=false.");
            }
        }
    }
}

/// <summary>FARM3109: the firewall that keeps RUN steps off this machine and the farm's services could not be set up.</summary>
public sealed class SandboxFirewallException(string message, Exception? innerException = null)
    : FarmException(FarmErrorCodes.SandboxFirewall, message, innerException);
