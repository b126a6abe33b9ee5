using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Dockerfile.Graph;

namespace Farm.Cli;

/// <summary>
/// <c>farm debug plan [-f FILE] [--build-arg K=V]… [--target S] CONTEXT</c>: prints the build graph
/// (stages, expanded steps, warnings) as JSON, without building anything.
/// </summary>
internal static class DebugPlanCommand
{
    // Relaxed escaping: shell commands full of quotes and '<' stay readable.
    private static readonly PlanJsonContext Json = new(new JsonSerializerOptions(PlanJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static Command Create()
    {
        var context = new Argument<DirectoryInfo>("CONTEXT") { Description = "The build context directory." };
        var file = new Option<FileInfo>("--file", "-f")
        {
            Description = "The Dockerfile (default: CONTEXT/Dockerfile); a relative path is relative to the current directory.",
        };
        var buildArgs = new Option<string[]>("--build-arg")
        {
            Description = "Set a build-time variable: NAME=value (NAME alone takes the value from the environment).",
            AllowMultipleArgumentsPerToken = false,
        };
        var target = new Option<string>("--target") { Description = "The stage to build (default: the last one)." };
        var platform = new Option<string>("--platform") { Description = "The target platform (default: linux/amd64)." };

        var command = new Command("plan", "Print the build graph Farm plans for a Dockerfile: stages, expanded steps, dependencies, warnings.");
        command.Arguments.Add(context);
        command.Options.Add(file);
        command.Options.Add(buildArgs);
        command.Options.Add(target);
        command.Options.Add(platform);
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var contextDir = parseResult.GetValue(context)!;

            // As docker: -f is relative to the working directory, not to the context.
            var path = parseResult.GetValue(file)?.ToString() ?? Path.Combine(contextDir.ToString(), "Dockerfile");
            var args = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var item in parseResult.GetValue(buildArgs) ?? [])
            {
                var eq = item.IndexOf('=', StringComparison.Ordinal);
                if (eq == 0)
                {
                    error.WriteLine($"farm: invalid --build-arg '{item}': write NAME=value");
                    return 1;
                }

                if (eq > 0)
                {
                    args[item[..eq]] = item[(eq + 1)..];
                }
                else if (Environment.GetEnvironmentVariable(item) is { } fromEnv)
                {
                    // docker build --build-arg NAME passes NAME from the environment, or nothing when unset.
                    args[item] = fromEnv;
                }
            }

            string text;
            try
            {
                text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
            {
                error.WriteLine($"farm: cannot read {path}: {e.Message}");
                return 1;
            }

            try
            {
                var options = new BuildGraphOptions
                {
                    BuildArgs = args,
                    Target = parseResult.GetValue(target),
                    Platform = parseResult.GetValue(platform) ?? "linux/amd64",
                };

                // The path as typed, so locations in errors can be pasted into an editor.
                var graph = BuildGraph.Create(text, path, options);
                output.Write(JsonSerializer.Serialize(graph, Json.BuildGraph) + "\n");
                foreach (var warning in graph.Warnings)
                {
                    error.WriteLine($"farm: {warning.Code}: {warning.Message}");
                }

                return 0;
            }
            catch (FarmException e)
            {
                error.WriteLine($"farm: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(BuildGraph))]
internal sealed partial class PlanJsonContext : JsonSerializerContext;
