using System.CommandLine;

namespace Farm.Cli;

/// <summary>Entry point of the farm command: one root command, each subcommand in its own file.</summary>
public static class CliApp
{
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (ContainerCommands.TryRunVerbatim(args) is { } containerExit)
        {
            return containerExit;
        }

        var root = new RootCommand("Farm: a distributed build farm for container images.");
        var debug = new Command("debug", "Inspect how Farm reads a Dockerfile.");
        foreach (var command in DebugCommands())
        {
            debug.Subcommands.Add(command);
        }

        root.Subcommands.Add(debug);
        root.Subcommands.Add(LoginCommands.Login());
        root.Subcommands.Add(LoginCommands.Logout());
        foreach (var command in ImageCommands.All())
        {
            root.Subcommands.Add(command);
        }

        foreach (var command in ContainerCommands.All())
        {
            root.Subcommands.Add(command);
        }

        root.Subcommands.Add(Build.BuildCommand.Create());
        root.Subcommands.Add(Local.DaemonCommands.Create());
        root.Subcommands.Add(Local.DaemonCommands.Version());
        root.Subcommands.Add(SystemCommands.Create());
        root.Subcommands.Add(ExplainCommand.Create());
        foreach (var command in Remote.BuildQueueCommands.All())
        {
            root.Subcommands.Add(command);
        }

        root.Options.Add(Remote.FarmCredentials.TokenFileOption);
        var parse = root.Parse(args);
        Remote.FarmCredentials.TokenFile = parse.GetValue(Remote.FarmCredentials.TokenFileOption);
        return parse.Invoke();
    }

    private static IEnumerable<Command> DebugCommands()
    {
        yield return DebugAstCommand.Create();
        yield return DebugPlanCommand.Create();
    }
}
