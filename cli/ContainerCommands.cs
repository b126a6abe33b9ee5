using System.CommandLine;
using System.Globalization;
using Farm.Contracts;
using Farm.Oci.Images;
using Farm.Oci.Registry;
using Farm.Containers;

namespace Farm.Cli;

/// <summary>
/// The classic container workflow over <see cref="ContainerRuntime"/>: run, exec, ps, port, logs, stop, start, rm,
/// commit. Flags and output follow docker's. <c>run</c> and <c>exec</c> are parsed by hand (<see cref="ContainerArgs"/>)
/// before System.CommandLine sees the line, because everything after the image or container belongs to the
/// container's command.
/// </summary>
internal static class ContainerCommands
{
    /// <summary>The hidden command a detached container's supervisor process runs.</summary>
    public const string SuperviseCommand = "container-supervise";

    private static readonly string[] PsHeader = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];

    private const string RunUsage = """
        Usage: farm run [OPTIONS] IMAGE [COMMAND [ARG...]]

        Create and run a container from a local image (pulled when missing).

          -d, --detach             Run in the background and print the container id
          -i, --interactive        Keep standard input open
          -t, --tty                Allocate a terminal
              --rm                 Remove the container when it exits
              --name NAME          Name the container
          -e, --env K=V            Set an environment variable (K alone takes the caller's value)
          -w, --workdir DIR        Working directory inside the container
          -u, --user USER[:GROUP]  User to run as
          -p, --publish [IP:]HOST:CONTAINER[/tcp|/udp]  Publish a container port on the host
          -P, --publish-all        Publish every EXPOSEd port on a free host port
              --network MODE       private (default: own namespace, outbound access, published ports), host, none
        """;

    private const string ExecUsage = """
        Usage: farm exec [OPTIONS] CONTAINER COMMAND [ARG...]

        Run a command in a running container.

          -i, --interactive        Keep standard input open
          -t, --tty                Allocate a terminal
          -e, --env K=V            Set an environment variable
          -w, --workdir DIR        Working directory inside the container
          -u, --user USER[:GROUP]  User to run as
        """;

    /// <summary>
    /// Runs <c>farm run</c> and <c>farm exec</c> from the raw words; null for any other command line, which
    /// System.CommandLine then parses.
    /// </summary>
    public static int? TryRunVerbatim(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is not ("run" or "exec"))
        {
            return null;
        }

        var rest = args[1..];
        if (rest.Length == 0 || rest[0] is "--help" or "-h" or "-?")
        {
            Console.Out.Write(args[0] == "run" ? RunUsage : ExecUsage);
            return rest.Length == 0 ? 1 : 0;
        }

        try
        {
            return args[0] == "run" ? RunAsync(rest).GetAwaiter().GetResult() : ExecAsync(rest).GetAwaiter().GetResult();
        }
        catch (ContainerStartException e)
        {
            Console.Error.WriteLine($"farm: {e.Message}");
            return e.ExitCode;
        }
        catch (FarmException e)
        {
            Console.Error.WriteLine($"farm: {e.Message}");
            // docker's convention: 125 when the container could not be run at all.
            return 125;
        }
    }

    /// <summary>The commands System.CommandLine parses (run and exec are listed for help).</summary>
    public static IEnumerable<Command> All()
    {
        yield return Listed("run", "Create and run a container from an image (farm run --help).");
        yield return Listed("exec", "Run a command in a running container (farm exec --help).");
        yield return Ps();
        yield return Port();
        yield return Stop();
        yield return Start();
        yield return Rm();
        yield return Commit();
        yield return Supervise();
    }

    /// <summary>
    /// <c>farm logs [-f] CONTAINER</c>: the container's output so far, and with <paramref name="follow"/> what it
    /// writes until it ends. Returns the exit code for farm.
    /// </summary>
    public static async Task<int> LogsAsync(string nameOrId, bool follow, CancellationToken cancellationToken)
    {
        try
        {
            var runtime = new ContainerRuntime();
            var container = runtime.Store.Resolve(nameOrId);
            var stdout = Console.OpenStandardOutput();
            await using (stdout.ConfigureAwait(false))
            {
                await runtime.CopyLogAsync(container, follow, stdout, cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }
        catch (FarmException e)
        {
            await Console.Error.WriteLineAsync($"farm: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private static async Task<int> RunAsync(string[] args)
    {
        var parsed = ContainerArgs.Parse(
            "run",
            args,
            new Dictionary<char, string> { ['d'] = "detach", ['i'] = "interactive", ['t'] = "tty", ['P'] = "publish-all" },
            ["rm"],
            [('\0', "name"), ('e', "env"), ('w', "workdir"), ('u', "user"), ('p', "publish"), ('\0', "network"), ('\0', "net")]);
        if (parsed.Positional.Count == 0)
        {
            throw new ContainerUsageException("run", "an IMAGE is needed");
        }

        var network = (parsed.Last("network") ?? parsed.Last("net") ?? "private") switch
        {
            "private" or "bridge" or "default" or "slirp4netns" => ContainerNetwork.Private,
            "host" => ContainerNetwork.Host,
            "none" => ContainerNetwork.None,
            var other => throw new ContainerUsageException("run", $"--network {other} is not one of private, host, none"),
        };
        var options = parsed.WithProcessOptions(new ContainerCreateOptions
        {
            Image = parsed.Positional[0],
            Command = [.. parsed.Positional.Skip(1)],
            Name = parsed.Last("name"),
            AutoRemove = parsed.Has("rm"),
            Network = network,
            Ports = [.. parsed.All("publish").Select(PortMapping.Parse)],
            PublishAll = parsed.Has("publish-all"),
        });
        var detach = parsed.Has("detach");
        if (detach && options.Tty)
        {
            // A detached container has no one to give a terminal to (farm has no attach); its output goes to the log.
            Console.Error.WriteLine("farm: warning: -t is ignored with -d; the output is recorded for farm logs.");
            options = options with { Tty = false, Interactive = false };
        }

        if (options.Tty && Console.IsInputRedirected)
        {
            throw new ContainerUsageException("run", "-t needs a terminal on standard input (run it in a terminal, or drop -t)");
        }

        var runtime = new ContainerRuntime();
        ContainerState container;
        using (var images = await LocalImageStore.OpenAsync(null, CancellationToken.None).ConfigureAwait(false))
        {
            LocalImage image;
            try
            {
                image = await images.GetAsync(options.Image, CancellationToken.None).ConfigureAwait(false);
            }
            catch (NoSuchImageException)
            {
                Console.Error.WriteLine($"Unable to find image '{options.Image}' locally");
                image = await images.PullAsync(options.Image, DockerConfig.Default(), null, new Progress<string>(Console.Error.WriteLine), CancellationToken.None).ConfigureAwait(false);
            }

            container = await runtime.CreateAsync(options, image, images, CancellationToken.None).ConfigureAwait(false);
        }

        if (detach)
        {
            var started = await runtime.StartDetachedAsync(container, SupervisorCommandLine(container.Id), CancellationToken.None).ConfigureAwait(false);
            Console.Out.WriteLine(container.Id);
            if (started.Error is { } error)
            {
                // The container exists (farm ps -a, farm logs), but never ran: say so as docker does.
                Console.Error.WriteLine($"farm: {error}");
                return started.ExitCode ?? 125;
            }

            return 0;
        }

        return await runtime.SuperviseAsync(container.Id, recordOutput: true, CancellationToken.None).ConfigureAwait(false);
    }

    private static async Task<int> ExecAsync(string[] args)
    {
        var parsed = ContainerArgs.Parse(
            "exec",
            args,
            new Dictionary<char, string> { ['i'] = "interactive", ['t'] = "tty" },
            [],
            [('e', "env"), ('w', "workdir"), ('u', "user")]);
        if (parsed.Positional.Count < 2)
        {
            throw new ContainerUsageException("exec", "a CONTAINER and a COMMAND are needed");
        }

        var options = parsed.WithProcessOptions(new ContainerExecOptions { Args = [.. parsed.Positional.Skip(1)] });
        if (options.Tty && Console.IsInputRedirected)
        {
            throw new ContainerUsageException("exec", "-t needs a terminal on standard input (run it in a terminal, or drop -t)");
        }

        var runtime = new ContainerRuntime();
        var container = runtime.Store.Resolve(parsed.Positional[0]);
        return await runtime.ExecAsync(container, options, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>How this very farm runs again: the apphost, or dotnet with farm.dll.</summary>
    private static List<string> SupervisorCommandLine(string id)
    {
        var process = Environment.ProcessPath ?? throw new ContainerRuntimeException("the path of the farm executable is unknown.");
        var command = new List<string> { process };
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            command.Add(typeof(ContainerCommands).Assembly.Location);
        }

        command.Add(SuperviseCommand);
        command.Add(id);
        return command;
    }

    private static Command Listed(string name, string description)
    {
        // Reached only for help listings: TryRunVerbatim handles these before System.CommandLine parses.
        var rest = new Argument<string[]>("ARGS") { Arity = ArgumentArity.ZeroOrMore };
        var command = new Command(name, description) { rest };
        command.SetAction(parse => TryRunVerbatim([name, .. parse.GetValue(rest) ?? []]) ?? 1);
        return command;
    }

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
        command.SetAction((parse, ct) => HandleAsync(parse, async (runtime, output) =>
        {
            foreach (var name in parse.GetValue(containers)!)
            {
                var c = runtime.Store.Resolve(name);
                await runtime.StopAsync(c, TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(time))), ct).ConfigureAwait(false);
                output.WriteLine(name);
            }
        }));
        return command;
    }

    private static Command Start()
    {
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("start", "Start stopped containers in the background.") { containers };
        command.SetAction((parse, ct) => HandleAsync(parse, async (runtime, output) =>
        {
            foreach (var name in parse.GetValue(containers)!)
            {
                var c = runtime.Store.Resolve(name);
                await runtime.StartDetachedAsync(c, SupervisorCommandLine(c.Id), ct).ConfigureAwait(false);
                output.WriteLine(name);
            }
        }));
        return command;
    }

    private static Command Rm()
    {
        var force = new Option<bool>("--force", "-f") { Description = "Kill a running container first." };
        var containers = new Argument<string[]>("CONTAINER") { Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Remove containers: their files, mounts, processes and network.") { force, containers };
        command.SetAction((parse, ct) => HandleAsync(parse, async (runtime, output) =>
        {
            foreach (var name in parse.GetValue(containers)!)
            {
                var c = runtime.Store.Resolve(name);
                await runtime.RemoveAsync(c, parse.GetValue(force), ct).ConfigureAwait(false);
                output.WriteLine(name);
            }
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

    private static Command Supervise()
    {
        var id = new Argument<string>("ID");
        var command = new Command(SuperviseCommand, "Runs a detached container until it ends (started by farm run -d and farm start).") { id };
        command.Hidden = true;
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                return await new ContainerRuntime().SuperviseAsync(parse.GetValue(id)!, recordOutput: false, ct).ConfigureAwait(false);
            }
            catch (FarmException e)
            {
                // The standard error of a supervisor is the container's log.
                await Console.Error.WriteLineAsync($"farm: {e.Message}").ConfigureAwait(false);
                return e is ContainerStartException start ? start.ExitCode : 125;
            }
        });
        return command;
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
        catch (FarmException e)
        {
            await parse.InvocationConfiguration.Error.WriteLineAsync($"farm: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private static string Status(ContainerState c) => c.Status switch
    {
        ContainerStatus.Running => "Up " + Ago(c.StartedAt ?? c.Created),
        ContainerStatus.Exited => $"Exited ({c.ExitCode}) {Ago(c.FinishedAt ?? c.Created)} ago",
        _ => "Created",
    };

    // docker's units.HumanDuration.
    private static string Ago(DateTimeOffset since)
    {
        var d = DateTimeOffset.UtcNow - since;
        return d.TotalSeconds < 1 ? "Less than a second"
            : d.TotalSeconds < 60 ? $"{(int)d.TotalSeconds} seconds"
            : d.TotalMinutes < 2 ? "About a minute"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes} minutes"
            : d.TotalHours < 2 ? "About an hour"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours} hours"
            : $"{(int)d.TotalDays} days";
    }
}
