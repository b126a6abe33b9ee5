using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Farm.Containers;

/// <summary>
/// A container's private network, as rootless podman builds it: a named network namespace
/// (<c>ip netns add</c>), slirp4netns attached to it for outbound access (user-mode TCP/IP, the container is
/// 10.0.2.100, the gateway 10.0.2.2, DNS 10.0.2.3), and host ports forwarded into it through slirp4netns's API
/// socket (<c>add_hostfwd</c>). See
/// <see href="https://github.com/rootless-containers/slirp4netns/blob/master/slirp4netns.1.md">slirp4netns(1)</see>.
/// </summary>
/// <remarks>
/// Host loopback stays out of reach (<c>--disable-host-loopback</c>): a container must not touch services the host
/// keeps on 127.0.0.1.
/// </remarks>
public static class SlirpNetwork
{
    /// <summary>The container's address inside the slirp network.</summary>
    public const string GuestAddress = "10.0.2.100";

    /// <summary>slirp4netns's DNS forwarder.</summary>
    public const string DnsAddress = "10.0.2.3";

    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The name of container <paramref name="id"/>'s network namespace.</summary>
    public static string NamespaceName(string id) => "farm-" + id[..12];

    /// <summary>The bind-mounted namespace file runc joins.</summary>
    public static string NamespacePath(string id) => "/run/netns/" + NamespaceName(id);

    /// <summary>The API socket; under /run because a socket path may be at most 107 bytes.</summary>
    public static string ApiSocketPath(string id) => $"/run/farm/slirp-{id[..16]}.sock";

    /// <summary>Creates the namespace with loopback up.</summary>
    /// <exception cref="ContainerNetworkException">ip failed.</exception>
    public static async Task CreateNamespaceAsync(string id, CancellationToken cancellationToken)
    {
        var name = NamespaceName(id);
        if (!File.Exists(NamespacePath(id)))
        {
            await IpAsync(["netns", "add", name], cancellationToken).ConfigureAwait(false);
        }

        await IpAsync(["-n", name, "link", "set", "lo", "up"], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes the namespace if it exists.</summary>
    public static async Task DeleteNamespaceAsync(string id)
    {
        if (File.Exists(NamespacePath(id)))
        {
            await IpAsync(["netns", "delete", NamespaceName(id)], CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Starts slirp4netns on the namespace of <paramref name="id"/>, waits for its API socket and adds
    /// <paramref name="ports"/>. The process is not waited for: the caller stops it with <see cref="Stop"/>.
    /// </summary>
    /// <exception cref="ContainerNetworkException">slirp4netns is missing, died, or refused a port.</exception>
    public static Task<ProcessIdentity> StartAsync(string id, IReadOnlyList<PortMapping> ports, CancellationToken cancellationToken) =>
        StartAsync(id, ports, group: null, cancellationToken);

    /// <summary>
    /// As <see cref="StartAsync(string, IReadOnlyList{PortMapping}, CancellationToken)"/>, with slirp4netns running as
    /// group <paramref name="group"/> (through setpriv; still root) so that a <see cref="Sandbox.SandboxFirewall"/>
    /// of that group filters where it connects.
    /// </summary>
    /// <exception cref="ContainerNetworkException">slirp4netns is missing, died, or refused a port.</exception>
    public static async Task<ProcessIdentity> StartAsync(string id, IReadOnlyList<PortMapping> ports, int? group, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ports);
        var socket = ApiSocketPath(id);
        Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
        File.Delete(socket);
        var start = new ProcessStartInfo(group is null ? "slirp4netns" : "setpriv")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        string[] slirp = ["--configure", "--mtu=65520", "--disable-host-loopback", "--netns-type=path", "--api-socket", socket, NamespacePath(id), "tap0"];
        foreach (var arg in group is { } g ? ["--regid", g.ToString(CultureInfo.InvariantCulture), "--clear-groups", "--", "slirp4netns", .. slirp] : slirp)
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ContainerNetworkException("slirp4netns did not start.");
        }
        catch (Win32Exception e)
        {
            throw new ContainerNetworkException($"slirp4netns could not be started: {e.Message}. Install it (apt-get install slirp4netns) or use --network host.", e);
        }

        // Its output is only diagnostics; drain it so it never blocks on a full pipe, keep it for an error message.
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var identity = ProcessIdentity.Of(process.Id) ?? new ProcessIdentity(process.Id, 0);
        try
        {
            await WaitForSocketAsync(process, socket, output, cancellationToken).ConfigureAwait(false);
            foreach (var port in ports)
            {
                await AddForwardAsync(socket, port, cancellationToken).ConfigureAwait(false);
            }

            return identity;
        }
        catch
        {
            Stop(identity, id);
            throw;
        }
    }

    /// <summary>Stops slirp4netns (when it still runs) and removes its socket.</summary>
    public static void Stop(ProcessIdentity? slirp, string id)
    {
        if (slirp is not null && slirp.IsAlive())
        {
            try
            {
                using var process = Process.GetProcessById(slirp.Pid);
                process.Kill();
                process.WaitForExit(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or Win32Exception)
            {
                // Ended by itself meanwhile.
            }
        }

        File.Delete(ApiSocketPath(id));
    }

    private static async Task WaitForSocketAsync(Process process, string socket, StringBuilder output, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (true)
        {
            if (process.HasExited)
            {
                throw new ContainerNetworkException($"slirp4netns exited with code {process.ExitCode} before it was ready: {Text(output)}. Check that /dev/net/tun exists, or use --network host.");
            }

            if (File.Exists(socket))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ContainerNetworkException($"slirp4netns did not open its API socket {socket} within {ReadyTimeout.TotalSeconds:0} s: {Text(output)}.");
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task AddForwardAsync(string socketPath, PortMapping port, CancellationToken cancellationToken)
    {
        var request = new JsonObject
        {
            ["execute"] = "add_hostfwd",
            ["arguments"] = new JsonObject
            {
                ["proto"] = port.Protocol,
                ["host_addr"] = port.HostIp,
                ["host_port"] = port.HostPort,
                ["guest_addr"] = GuestAddress,
                ["guest_port"] = port.ContainerPort,
            },
        };
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(Encoding.UTF8.GetBytes(request.ToJsonString()), cancellationToken).ConfigureAwait(false);
        // slirp4netns answers one JSON object and closes the connection once the request is fully read.
        socket.Shutdown(SocketShutdown.Send);
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            answer.Write(buffer, 0, read);
        }

        var text = Encoding.UTF8.GetString(answer.ToArray());
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.TryGetProperty("error", out var error))
            {
                throw new ContainerNetworkException($"publishing {port} failed: {error}. Is host port {port.HostPort} already in use? Choose another with -p.");
            }
        }
        catch (JsonException e)
        {
            throw new ContainerNetworkException($"slirp4netns answered '{text}' to add_hostfwd for {port}.", e);
        }
    }

    private static async Task IpAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        try
        {
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new ContainerNetworkException($"ip {string.Join(' ', args)} failed: {(await stderr.ConfigureAwait(false)).Trim()}. Farm needs root for a private network; use --network host otherwise.");
            }
        }
        catch (Win32Exception e)
        {
            throw new ContainerNetworkException($"ip could not be started: {e.Message}. Install iproute2.", e);
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString().Trim();
        }
    }
}
