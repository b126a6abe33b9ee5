using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>Runs the farm command as a separate process (<see cref="CliProcess"/>) and captures what a user would see.</summary>
internal static class FarmCli
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    public static Task<CliProcess.Result> RunAsync(params string[] args) => RunAsync(null, null, args);

    public static Task<CliProcess.Result> RunAsync(IReadOnlyDictionary<string, string>? environment, string? stdin, params string[] args) =>
        CliProcess.RunAsync(environment ?? new Dictionary<string, string>(), Timeout, stdin, args);

    /// <summary>
    /// The environment of a client of a test's farm: its own state and docker configuration under
    /// <paramref name="directory"/>, the coordinator at <paramref name="farmHost"/> (empty: none, whatever this process
    /// has) and, when given, RabbitMQ at <paramref name="rabbitMq"/>.
    /// </summary>
    public static Dictionary<string, string> ClientEnv(string directory, string? farmHost, string? rabbitMq = null)
    {
        var env = new Dictionary<string, string>
        {
            ["FARM_STATE_DIR"] = Path.Combine(directory, "state"),
            ["DOCKER_CONFIG"] = Path.Combine(directory, "docker"),
            ["FARM_HOST"] = farmHost ?? string.Empty,
        };
        if (rabbitMq is not null)
        {
            env["FARM_RABBITMQ"] = rabbitMq;
        }

        return env;
    }
}
