using System.CommandLine;
using Farm.Cli.Remote;
using Farm.Containers;
using Farm.Contracts;
using Farm.Oci.Images;
using Farm.Oci.Registry;

namespace Farm.Cli;

/// <summary>
/// The classic container workflow over <see cref="ContainerRuntime"/>: run, exec, ps, port, logs, stop, start, rm,
/// commit. Flags and output follow docker's. <c>run</c> and <c>exec</c> are parsed by hand (<see cref="ContainerArgs"/>)
/// before System.CommandLine sees the line, because everything after the image or container belongs to the
/// container's command.
/// </summary>
internal static partial class ContainerCommands
{
    /// <summary>The hidden command a detached container's supervisor process runs.</summary>
    public const string SuperviseCommand = "container-supervise";

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
              --entrypoint CMD     Run CMD instead of the image's ENTRYPOINT (and drop its CMD); "" clears it
          -v, --volume HOST:CONTAINER[:ro]  Bind a host directory or file (an absolute path, or ./relative)
              --mount type=bind,source=HOST,target=CONTAINER[,readonly]
              --mount type=tmpfs,target=CONTAINER[,tmpfs-size=BYTES]
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
        catch (Exception e) when (CliErrors.Handles(e))
        {
            return CliErrors.ReportContainer(e, Console.Error);
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
    /// <c>farm logs [-f] [--tail N] [--since T] [-t] CONTAINER</c>: the container's output so far (its last
    /// <paramref name="tail"/> lines when given; of those, the lines from <paramref name="since"/> on), and with
    /// <paramref name="follow"/> what it writes until it ends; each line after its time with <paramref name="timestamps"/>.
    /// Returns the exit code for farm.
    /// </summary>
    public static async Task<int> LogsAsync(string nameOrId, bool follow, int? tail, DateTimeOffset? since, bool timestamps, CancellationToken cancellationToken)
    {
        try
        {
            var runtime = new ContainerRuntime();
            var container = runtime.Store.Resolve(nameOrId);
            var stdout = Console.OpenStandardOutput();
            await using (stdout.ConfigureAwait(false))
            {
                await runtime.CopyLogAsync(container, follow, tail, since, timestamps, stdout, cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }
        catch (Exception e) when (CliErrors.Handles(e))
        {
            return CliErrors.Report(e, Console.Error);
        }
    }

    private static async Task<int> RunAsync(string[] args)
    {
        var parsed = ContainerArgs.Parse(
            "run",
            args,
            new Dictionary<char, string> { ['d'] = "detach", ['i'] = "interactive", ['t'] = "tty", ['P'] = "publish-all" },
            ["rm"],
            [('\0', "name"), ('e', "env"), ('w', "workdir"), ('u', "user"), ('p', "publish"), ('\0', "network"), ('\0', "net"),
                ('\0', "entrypoint"), ('v', "volume"), ('\0', "mount"), ('\0', "platform")]);
        if (parsed.Positional.Count == 0)
        {
            throw new ContainerUsageException("run", "an IMAGE is needed");
        }

        var platform = ImageCommands.PlatformOption(parsed.Last("platform"));

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
            Entrypoint = parsed.Last("entrypoint") is { } entrypoint ? (entrypoint.Length == 0 ? [] : [entrypoint]) : null,
            Mounts =
            [
                .. parsed.All("volume").Select(v => ContainerMount.ParseVolume(v, Environment.CurrentDirectory)),
                .. parsed.All("mount").Select(ContainerMount.ParseMount),
            ],
        });
        if (options.Mounts.GroupBy(m => m.Target, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidMountException(twice.Key, "two mounts have this container path");
        }

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
            LocalImage? image;
            try
            {
                image = await images.GetAsync(options.Image, CancellationToken.None).ConfigureAwait(false);
                if (platform is not null && !ImageCommands.IsFor(image.Config, platform))
                {
                    // As docker: a local image of another platform is replaced by the one asked for.
                    Console.Error.WriteLine($"The local image '{options.Image}' is for {image.Config.Os}/{image.Config.Architecture}, not {platform}");
                    image = null;
                }
            }
            catch (NoSuchImageException)
            {
                Console.Error.WriteLine($"Unable to find image '{options.Image}' locally");
                image = null;
            }

            if (image is null)
            {
                var registry = CliRegistryOptions.FromEnvironment();
                image = await images.PullAsync(options.Image, DockerConfig.Default(), platform is null ? registry : registry with { Platform = platform }, new Progress<string>(Console.Error.WriteLine), CancellationToken.None).ConfigureAwait(false);
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
                return started.ExitCode ?? CliErrors.ContainerNotRun;
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
            command.Add(Path.Combine(AppContext.BaseDirectory, "farm.dll"));
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
            catch (Exception e) when (CliErrors.Handles(e))
            {
                // The standard error of a supervisor is the container's log.
                return CliErrors.ReportContainer(e, Console.Error);
            }
        });
        return command;
    }
}
