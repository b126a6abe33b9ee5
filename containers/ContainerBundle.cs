using System.Text.Json;
using Farm.Containers.Sandbox;
using Farm.Oci.IO;

namespace Farm.Containers;

/// <summary>
/// A container's runc bundle: the runtime spec the RUN sandbox generates (<see cref="RuntimeSpecGenerator"/>) with the
/// container's network namespace, terminal and own /etc/hosts, /etc/resolv.conf and /etc/hostname.
/// </summary>
internal static class ContainerBundle
{
    /// <summary>Writes the bundle of a created container whose root file system is mounted.</summary>
    public static async Task WriteAsync(ContainerPaths paths, ContainerState state, CancellationToken cancellationToken)
    {
        var user = UserResolver.Resolve(paths.Merged, state.User);
        SandboxRunner.EnsureWorkingDirectory(paths.Merged, state.WorkingDir);

        var hostResolv = File.Exists("/etc/resolv.conf") ? await File.ReadAllTextAsync("/etc/resolv.conf", cancellationToken).ConfigureAwait(false) : "";
        await File.WriteAllTextAsync(paths.ResolvConf, state.Network == ContainerNetwork.Private ? $"nameserver {SlirpNetwork.DnsAddress}\n" : hostResolv, cancellationToken).ConfigureAwait(false);
        var ownAddress = state.Network == ContainerNetwork.Private ? SlirpNetwork.GuestAddress : "127.0.1.1";
        await File.WriteAllTextAsync(paths.Hosts, $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ownAddress}\t{state.Hostname}\n", cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(paths.Hostname, state.Hostname + "\n", cancellationToken).ConfigureAwait(false);
        foreach (var f in (string[])[paths.ResolvConf, paths.Hosts, paths.Hostname])
        {
            UnixFile.Chmod(f, 0x1A4 /* 0644 */);
        }

        var env = state.Env.ToList();
        if (state.Tty && !env.Any(e => e.StartsWith("TERM=", StringComparison.Ordinal)))
        {
            env.Add("TERM=xterm");
        }

        var run = new RunSpec
        {
            Args = state.Args,
            RootfsPath = paths.Merged,
            Env = env,
            WorkingDirectory = state.WorkingDir,
            User = state.User,
            Hostname = state.Hostname,
            Network = state.Network switch
            {
                ContainerNetwork.Host => NetworkMode.Host,
                ContainerNetwork.Private => NetworkMode.Private,
                _ => NetworkMode.None,
            },
            NetworkNamespacePath = state.Network == ContainerNetwork.Private ? SlirpNetwork.NamespacePath(state.Id) : null,
            Mounts = [new BindMount(paths.Hostname, "/etc/hostname"), .. state.Mounts.Where(m => m.Type == ContainerMountType.Bind).Select(m => new BindMount(m.Source!, m.Target, m.ReadOnly))],
            Tmpfs = [.. state.Mounts.Where(m => m.Type == ContainerMountType.Tmpfs).Select(m => new TmpfsMount(m.Target, m.SizeBytes))],
        };
        var spec = RuntimeSpecGenerator.Generate(run, user, new RuntimeSpecGenerator.NetworkFiles(paths.ResolvConf, paths.Hosts));
        spec = spec with { Process = spec.Process with { Terminal = state.Tty } };
        Directory.CreateDirectory(paths.Bundle);
        await File.WriteAllBytesAsync(paths.RuntimeSpec, JsonSerializer.SerializeToUtf8Bytes(spec, RuntimeSpecJsonContext.Default.RuntimeSpec), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Asks for a terminal exactly when this run gives one: a container made with <c>-t</c> that <c>farm start</c> runs
    /// detached has none, and runc refuses a terminal it cannot set up.
    /// </summary>
    public static async Task SetTerminalAsync(ContainerPaths paths, bool terminal, CancellationToken cancellationToken)
    {
        var spec = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(paths.RuntimeSpec, cancellationToken).ConfigureAwait(false), RuntimeSpecJsonContext.Default.RuntimeSpec)
            ?? throw new ContainerRuntimeException($"the runc bundle {paths.RuntimeSpec} is empty; remove the container and run it again.");
        if (spec.Process.Terminal != terminal)
        {
            spec = spec with { Process = spec.Process with { Terminal = terminal } };
            await File.WriteAllBytesAsync(paths.RuntimeSpec, JsonSerializer.SerializeToUtf8Bytes(spec, RuntimeSpecJsonContext.Default.RuntimeSpec), cancellationToken).ConfigureAwait(false);
        }
    }
}
