using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>Runs the farm command as a separate process (<see cref="CliProcess"/>) and captures what a user would see.</summary>
internal static class FarmCli
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    public static Task<CliProcess.Result> RunAsync(params string[] args) => RunAsync(null, null, args);

    public static Task<CliProcess.Result> RunAsync(IReadOnlyDictionary<string, string>? environment, string? stdin, params string[] args) =>
        CliProcess.RunAsync(environment ?? new Dictionary<string, string>(), Timeout, stdin, args);
}
