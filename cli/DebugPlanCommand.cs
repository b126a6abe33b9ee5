using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Farm.Contracts;
using Farm.Dockerfile.Planning;
using Farm.Dockerfile.Context;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Ignore;

namespace Farm.Cli;

/// <summary>
/// <c>farm debug plan [-f FILE] [--build-arg K=V]… [--target S] CONTEXT</c>: prints the build graph
/// (stages, expanded steps, warnings) as JSON, without building anything. Each layer step also shows its cache key
/// (<c>cacheKey</c>, <c>parentKey</c>, <c>cacheable</c>, <c>notCacheableReason</c>), computed from the context as
/// packed here (with its .dockerignore). No registry is asked: base images are keyed by their NAME and marked
/// "unpinned", i.e. not cacheable; the build pins them to digests, so its keys differ from these.
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
        command.SetAction(async (parseResult, cancellationToken) =>
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
                    return CliErrors.Report(new InvalidCliArgumentException($"invalid --build-arg '{item}': write NAME=value"), error);
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

            try
            {
                var text = Build.BuildCommand.ReadDockerfile(path);
                var options = new BuildGraphOptions
                {
                    BuildArgs = args,
                    Target = parseResult.GetValue(target),
                    Platform = parseResult.GetValue(platform) ?? "linux/amd64",
                };

                // The path as typed, so locations in errors can be pasted into an editor.
                var graph = BuildGraph.Create(text, path, options);
                var json = JsonSerializer.SerializeToNode(graph, Json.BuildGraph)!.AsObject();
                try
                {
                    var keys = await ComputeKeysAsync(graph, contextDir.FullName, path, SourceDateEpoch.FromBuildArgs(args), cancellationToken).ConfigureAwait(false);
                    AddKeys(json, keys);
                }
                catch (FarmException e)
                {
                    // The plan is still worth showing; the build itself would stop here.
                    error.WriteLine($"farm: cache keys not computed: {e.Message}");
                }

                output.Write(json.ToJsonString(Json.Options) + "\n");
                foreach (var warning in graph.Warnings)
                {
                    error.WriteLine($"farm: {warning.Code}: {warning.Message}");
                }

                return 0;
            }
            catch (Exception e) when (CliErrors.Handles(e))
            {
                return CliErrors.Report(e, error);
            }
        });
        return command;
    }

    private static async Task<CacheKeyPlan> ComputeKeysAsync(BuildGraph graph, string contextDir, string dockerfilePath, DateTimeOffset? sourceDateEpoch, CancellationToken cancellationToken)
    {
        var ignorePath = DockerIgnoreFile.Locate(contextDir, dockerfilePath);
        var ignore = ignorePath is null
            ? PatternMatcher.Empty
            : (await DockerIgnoreFile.LoadAsync(ignorePath, cancellationToken).ConfigureAwait(false)).CreateMatcher();

        // Only the index is needed: the tar goes nowhere.
        var index = await BuildContextPacker.PackAsync(contextDir, ignore, Stream.Null, progress: null, cancellationToken).ConfigureAwait(false);
        // With the build's SOURCE_DATE_EPOCH, as the coordinator keys the steps.
        return CacheKeyPlanner.Compute(graph, index, name => name, new CacheKeyOptions { SourceDateEpoch = sourceDateEpoch });
    }

    private static void AddKeys(JsonObject plan, CacheKeyPlan keys)
    {
        plan["cacheKeyFormat"] = CacheKeyWriter.FormatVersion;
        foreach (var stage in plan["stages"]!.AsArray())
        {
            foreach (var step in stage!["steps"]!.AsArray())
            {
                if (keys.Find(step!["id"]!.GetValue<string>()) is { } key)
                {
                    step["cacheKey"] = key.Key;
                    step["parentKey"] = key.ParentKey;
                    step["cacheable"] = key.Cacheable;
                    if (key.NotCacheableReason is { } reason)
                    {
                        step["notCacheableReason"] = reason;
                    }
                }
            }
        }
    }
}

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(BuildGraph))]
internal sealed partial class PlanJsonContext : JsonSerializerContext;
