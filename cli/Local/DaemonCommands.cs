using System.Reflection;
using System.CommandLine;
using Farm.Cli.Build;
using Farm.Cli.Progress;

namespace Farm.Cli.Local;

/// <summary><c>farm daemon start|stop|status|logs</c>: the local farm daemon, which <c>farm build</c> also starts on demand.</summary>
internal static class DaemonCommands
{
    /// <summary>
    /// <c>farm version</c>, as <c>docker version</c>: the client's version and the local daemon's, without starting it.
    /// The daemon's is the build identity the CLI compares to restart a daemon of another build.
    /// </summary>
    public static Command Version()
    {
        var command = new Command("version", "Show the farm CLI's version and the local farm daemon's (not started if it does not run).");
        command.SetAction((parse, cancellationToken) => BuildCommand.RunAsync(parse, async () =>
        {
            var output = parse.InvocationConfiguration.Output;
            var client = typeof(DaemonCommands).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            output.WriteLine($"Client: farm {client}");
            var local = new LocalDaemon();
            using var farm = Remote.RemoteFarm.OverSocket(local.Socket);
            output.WriteLine(await local.ProbeAsync(farm, cancellationToken).ConfigureAwait(false) is { } daemon
                ? $"Daemon: {BuildProgress.Str(daemon, "version")} (pid {BuildProgress.Num(daemon, "pid")}, socket {local.Socket})"
                : $"Daemon: not running (socket {local.Socket}; farm build starts it)");
            return 0;
        }));
        return command;
    }

    public static Command Create()
    {
        var daemon = new Command("daemon", "The local farm daemon (coordinator and worker in one process) that farm build uses.");
        var start = new Command("start", "Start the daemon unless it runs (farm build starts it on demand too).");
        start.SetAction((parse, cancellationToken) => BuildCommand.RunAsync(parse, async () =>
        {
            var local = new LocalDaemon();
            using var farm = await local.ConnectAsync(parse.InvocationConfiguration.Error, cancellationToken).ConfigureAwait(false);
            var version = await farm.VersionAsync(cancellationToken).ConfigureAwait(false);
            parse.InvocationConfiguration.Output.WriteLine($"farm daemon {BuildProgress.Num(version, "pid")} on {local.Socket}");
            return 0;
        }));
        var stop = new Command("stop", "Stop the daemon; its running builds stop with it.");
        stop.SetAction((parse, cancellationToken) => BuildCommand.RunAsync(parse, async () =>
        {
            var local = new LocalDaemon();
            using var farm = Remote.RemoteFarm.OverSocket(local.Socket);
            if (await local.ProbeAsync(farm, cancellationToken).ConfigureAwait(false) is null)
            {
                parse.InvocationConfiguration.Output.WriteLine("farm daemon: not running");
                return 0;
            }

            await farm.StopDaemonAsync(cancellationToken).ConfigureAwait(false);
            while (File.Exists(local.Socket))
            {
                await Task.Delay(25, cancellationToken).ConfigureAwait(false);
            }

            parse.InvocationConfiguration.Output.WriteLine("farm daemon: stopped");
            return 0;
        }));
        var status = new Command("status", "Whether the daemon runs: its pid, socket, version and running builds (JSON), or exit code 3.");
        status.SetAction((parse, cancellationToken) => BuildCommand.RunAsync(parse, async () =>
        {
            var local = new LocalDaemon();
            using var farm = Remote.RemoteFarm.OverSocket(local.Socket);
            if (await local.ProbeAsync(farm, cancellationToken).ConfigureAwait(false) is not { } version)
            {
                parse.InvocationConfiguration.Output.WriteLine($"farm daemon: not running (socket {local.Socket})");
                return 3;
            }

            parse.InvocationConfiguration.Output.WriteLine(version.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }));
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing what the daemon logs." };
        var logs = new Command("logs", "Print the daemon's log (farmd.log in the state directory).") { follow };
        logs.SetAction((parse, cancellationToken) => BuildCommand.RunAsync(parse, async () =>
        {
            var local = new LocalDaemon();
            if (!File.Exists(local.LogPath))
            {
                parse.InvocationConfiguration.Output.WriteLine($"farm daemon: no log yet ({local.LogPath})");
                return 0;
            }

            using var log = new StreamReader(new FileStream(local.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            var output = parse.InvocationConfiguration.Output;
            while (true)
            {
                if (await log.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
                {
                    output.WriteLine(line);
                    continue;
                }

                if (!parse.GetValue(follow))
                {
                    return 0;
                }

                output.Flush();
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
        }));
        daemon.Subcommands.Add(start);
        daemon.Subcommands.Add(stop);
        daemon.Subcommands.Add(status);
        daemon.Subcommands.Add(logs);
        return daemon;
    }
}
