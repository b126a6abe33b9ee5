using System.CommandLine;
using System.Globalization;
using Farm.Containers;
using Farm.Contracts;
using Farm.Oci.Images;

namespace Farm.Cli;

// The commands that list and manage containers: ps, port, stop, start, rm, commit (run and exec: ContainerCommands.cs).
internal static partial class ContainerCommands
{
    private static readonly string[] PsHeader = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];

    private static Command Ps()
    {
        var all = new Option<bool>("--all", "-a") { Description = "Show every container (default: running ones)." };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only show container ids." };
        var command = new Command("ps", "List containers.") { all, quiet };
        command.SetAction(parse => Handle(parse, (runtime, output) =>
        {
            var rows = runtime.Store.List().Select(runtime.Refresh).Where(c => parse.GetValue(all) || c.Status == ContainerStatus.Running).ToList();
            if (parse.GetValue(quiet))
            {
                foreach (var c in rows)
                {
                    output.WriteLine(c.ShortId);
                }

                return;
            }

            var table = new List<string[]> { PsHeader };
            foreach (var c in rows)
            {
                var cmd = string.Join(' ', c.Args);
                cmd = "\"" + (cmd.Length > 20 ? cmd[..19] + "…" : cmd) + "\"";
                table.Add([c.ShortId, c.Image, cmd, Ago(c.Created) + " ago", Status(c), string.Join(", ", c.Ports), c.Name]);
            }

            // Columns as wide as their widest cell plus three spaces, as docker's tabwriter lays them out.
            var widths = Enumerable.Range(0, table[0].Length).Select(i => table.Max(r => r[i].Length) + 3).ToArray();
            foreach (var row in table)
            {
                output.WriteLine(string.Concat(row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))));
            }
        }));
        return command;
    }

    private static Command Port()
    {
        var container = new Argument<string>("CONTAINER");
        var privatePort = new Argument<string?>("PRIVATE_PORT[/PROTO]") { Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("port", "List a container's published ports, or where one port is published.") { container, privatePort };
        command.SetAction(parse => Handle(parse, (runtime, output) =>
        {
            var c = runtime.Store.Resolve(parse.GetValue(container)!);
            var wanted = parse.GetValue(privatePort);
            foreach (var p in c.Ports)
            {
                if (wanted is null)
                {
                    output.WriteLine($"{p.ContainerPort}/{p.Protocol} -> {p.HostIp}:{p.HostPort}");
                }
                else if (wanted == $"{p.ContainerPort}/{p.Protocol}" || (wanted == p.ContainerPort.ToString(CultureInfo.InvariantCulture) && p.Protocol == "tcp"))
                {
                    output.WriteLine($"{p.HostIp}:{p.HostPort}");
                }
            }

            if (wanted is not null && !c.Ports.Any(p => wanted.StartsWith(p.ContainerPort.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)))
            {
                throw new ContainerStateException(c.Name, $"no public port '{wanted}' published.");
            }
        }));
        return command;
    }

    private static Command Stop()
    {
        var time = new Option<int>("--time", "-t") { Description = "Seconds to wait after SIGTERM before SIGKILL.", DefaultValueFactory = _ => 10 };
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("stop", "Stop running containers (SIGTERM, then SIGKILL).") { time, containers };
        command.SetAction((parse, ct) => EachAsync(parse, containers, async (runtime, name) =>
        {
            var c = runtime.Store.Resolve(name);
            await runtime.StopAsync(c, TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(time))), ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command Start()
    {
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("start", "Start stopped containers in the background.") { containers };
        command.SetAction((parse, ct) => EachAsync(parse, containers, async (runtime, name) =>
        {
            var c = runtime.Store.Resolve(name);
            await runtime.StartDetachedAsync(c, SupervisorCommandLine(c.Id), ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command Rm()
    {
        var force = new Option<bool>("--force", "-f") { Description = "Kill a running container first." };
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Remove containers: their files, mounts, processes and network.") { force, containers };
        command.SetAction((parse, ct) => EachAsync(parse, containers, async (runtime, name) =>
        {
            var c = runtime.Store.Resolve(name);
            await runtime.RemoveAsync(c, parse.GetValue(force), ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command Commit()
    {
        var author = new Option<string?>("--author", "-a") { Description = "Author (e.g. \"Jane <jane@example.com>\")." };
        var message = new Option<string?>("--message", "-m") { Description = "Commit message (the history comment)." };
        var changes = new Option<string[]>("--change", "-c") { Description = "A Dockerfile instruction applied to the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR.", AllowMultipleArgumentsPerToken = false };
        var pause = new Option<bool>("--pause", "-p") { Description = "Pause the container while its changes are read (default true).", DefaultValueFactory = _ => true };
        var container = new Argument<string>("CONTAINER");
        var name = new Argument<string?>("REPOSITORY[:TAG]") { Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("commit", "Make a new image from a container's changes.") { author, message, changes, pause, container, name };
        command.SetAction((parse, ct) => HandleAsync(parse, async (runtime, output) =>
        {
            var c = runtime.Store.Resolve(parse.GetValue(container)!);
            using var images = await LocalImageStore.OpenAsync(null, ct).ConfigureAwait(false);
            var image = await runtime.CommitAsync(c, new ContainerCommitOptions
            {
                Name = parse.GetValue(name),
                Author = parse.GetValue(author),
                Message = parse.GetValue(message),
                Changes = parse.GetValue(changes) ?? [],
                Pause = parse.GetValue(pause),
            }, images, parse.InvocationConfiguration.Error, ct).ConfigureAwait(false);
            output.WriteLine(image.Id.ToString());
        }));
        return command;
    }

    /// <summary>
    /// Runs <paramref name="action"/> on each container named, printing each name done; one that fails is reported
    /// and the others are still done (<see cref="CliErrors.EachAsync"/>).
    /// </summary>
    private static Task<int> EachAsync(ParseResult parse, Argument<string[]> names, Func<ContainerRuntime, string, Task> action)
    {
        var runtime = new ContainerRuntime();
        var output = parse.InvocationConfiguration.Output;
        return CliErrors.EachAsync(parse.GetValue(names)!, parse.InvocationConfiguration.Error, async name =>
        {
            await action(runtime, name).ConfigureAwait(false);
            output.WriteLine(name);
        });
    }

    private static int Handle(ParseResult parse, Action<ContainerRuntime, TextWriter> action) =>
        HandleAsync(parse, (runtime, output) =>
        {
            action(runtime, output);
            return Task.CompletedTask;
        }).GetAwaiter().GetResult();

    private static async Task<int> HandleAsync(ParseResult parse, Func<ContainerRuntime, TextWriter, Task> action)
    {
        try
        {
            await action(new ContainerRuntime(), parse.InvocationConfiguration.Output).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (CliErrors.Handles(e))
        {
            return CliErrors.Report(e, parse.InvocationConfiguration.Error);
        }
    }

    private static string Status(ContainerState c) => c.Status switch
    {
        ContainerStatus.Running => "Up " + Ago(c.StartedAt ?? c.Created),
        ContainerStatus.Exited => $"Exited ({c.ExitCode}) {Ago(c.FinishedAt ?? c.Created)} ago",
        _ => "Created",
    };

    private static string Ago(DateTimeOffset since) => HumanTime.Since(since, DateTimeOffset.UtcNow);
}
