using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Farm.Cli.Build;
using Farm.Cli.Local;
using Farm.Cli.Remote;
using Farm.Contracts;
using static Farm.Cli.Progress.BuildProgress;

namespace Farm.Cli;

/// <summary>
/// <c>farm explain BUILD [STEP]</c>: why each step of a build ran instead of coming from the cache, in full: every key
/// input that differs from the previous build of the same Dockerfile and target, with the files added, removed or
/// changed (docs/architecture.md, "Why a step ran"). Read from the build's events, so a token sees only its tenant's.
/// </summary>
internal static class ExplainCommand
{
    public static Command Create()
    {
        var build = new Argument<string>("BUILD") { Description = "The build id (rawjson's buildId, farm submit's output), or 'last' for the newest build you may see." };
        var step = new Argument<string?>("STEP") { Description = "One step, by id (s0/3) as rawjson and farm explain show it.", Arity = ArgumentArity.ZeroOrOne };
        var farmUrl = new Option<string>("--farm") { Description = "The coordinator's HTTP address (default: $FARM_HOST, else the local farm daemon)." };
        var command = new Command("explain", "Say why each step of a build ran instead of coming from the cache.") { build, step, farmUrl };
        command.SetAction((parse, cancellationToken) => BuildCommand.RunAsync(parse, async () =>
        {
            var url = parse.GetValue(farmUrl) is { Length: > 0 } given ? given : Environment.GetEnvironmentVariable("FARM_HOST") is { Length: > 0 } host ? host : null;
            var where = url ?? "the local farm daemon";
            if (url is null && !File.Exists(new LocalDaemon().Socket))
            {
                throw new NoSuchBuildException(parse.GetValue(build)!, "the local farm daemon (it does not run; it forgets its builds when it stops)");
            }

            using var farm = url is null ? RemoteFarm.OverSocket(new LocalDaemon().Socket) : new RemoteFarm(url);
            var value = parse.GetValue(build)!;
            Guid id;
            if (string.Equals(value, "last", StringComparison.OrdinalIgnoreCase))
            {
                id = await farm.LatestBuildAsync(cancellationToken).ConfigureAwait(false) ?? throw new NoSuchBuildException(value, where);
            }
            else if (!Guid.TryParse(value, out id))
            {
                throw new NoSuchBuildException(value, $"{where} (build ids are GUIDs, or 'last')");
            }

            var events = await farm.EventsAsync(id, cancellationToken).ConfigureAwait(false);
            parse.InvocationConfiguration.Output.Write(Render(id, events, parse.GetValue(step)));
            parse.InvocationConfiguration.Output.Flush();
            return 0;
        }));
        return command;
    }

    /// <summary>The explanation of build <paramref name="id"/> from its events: every layer step, or only <paramref name="only"/>.</summary>
    /// <exception cref="NoSuchStepException"><paramref name="only"/> is not a step of the build that ran (FARM5080).</exception>
    internal static string Render(Guid id, IReadOnlyList<JsonObject> events, string? only)
    {
        // The last start of each step counts: a resumed build starts its steps again.
        var steps = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        var cached = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            switch (Str(e, "type"))
            {
                case "StepStarted":
                    steps[Str(e, "stepId")] = e;
                    break;
                case "StepFinished" when Flag(e["outcome"], "cached"):
                    cached.Add(Str(e["outcome"], "stepId"));
                    break;
            }
        }

        var text = new System.Text.StringBuilder();
        if (only is not null)
        {
            if (!steps.TryGetValue(only, out var start) || start["explanation"] is not JsonObject)
            {
                var ran = steps.Where(s => s.Value["explanation"] is JsonObject).Select(s => s.Key).ToList();
                throw new NoSuchStepException(id, only, ran);
            }

            Step(text, start, cached: false);
            return text.ToString();
        }

        var previous = steps.Values.Select(s => s["explanation"]).OfType<JsonObject>().Select(x => Str(x, "previousBuild")).FirstOrDefault(p => p.Length > 0);
        text.Append(CultureInfo.InvariantCulture, $"build {id}: ");
        text.Append(previous is null ? "no earlier build of this Dockerfile and target to compare with" : $"compared with build {previous}, the previous build of this Dockerfile and target");
        text.Append('\n');
        if (steps.Count == 0)
        {
            text.Append("no layer step started\n");
        }

        foreach (var start in steps.Values)
        {
            Step(text, start, cached.Contains(Str(start, "stepId")));
        }

        return text.ToString();
    }

    private static void Step(System.Text.StringBuilder text, JsonObject start, bool cached)
    {
        text.Append(CultureInfo.InvariantCulture, $"{Str(start, "stepId")} {Str(start, "display")}\n");
        if (start["explanation"] is not JsonObject explanation)
        {
            text.Append(cached ? "  CACHED\n" : "  ran, without a recorded reason\n");
            return;
        }

        text.Append(CultureInfo.InvariantCulture, $"  rebuilt: {Str(explanation, "summary")}\n");
        foreach (var reason in explanation["reasons"]?.AsArray().OfType<JsonObject>() ?? [])
        {
            text.Append(CultureInfo.InvariantCulture, $"  - {Str(reason, "kind")}: {Str(reason, "message")}\n");
            Paths(text, reason, "changed");
            Paths(text, reason, "added");
            Paths(text, reason, "removed");
            if (reason["names"] is JsonArray { Count: > 0 } names && Str(reason, "kind") is "args" or "env" or "settings" or "source")
            {
                text.Append(CultureInfo.InvariantCulture, $"      names: {string.Join(", ", names.Select(n => (string?)n))}\n");
            }
        }
    }

    private static void Paths(System.Text.StringBuilder text, JsonObject reason, string kind)
    {
        var count = (int)Num(reason, kind + "Count");
        if (count == 0)
        {
            return;
        }

        var shown = reason[kind]?.AsArray().Select(p => (string?)p).ToList() ?? [];
        text.Append(CultureInfo.InvariantCulture, $"      {kind} ({count}):\n");
        foreach (var path in shown)
        {
            text.Append(CultureInfo.InvariantCulture, $"        {path}\n");
        }

        if (count > shown.Count)
        {
            text.Append(CultureInfo.InvariantCulture, $"        ... and {count - shown.Count} more\n");
        }
    }
}

/// <summary><c>farm explain BUILD STEP</c> names no step of the build that ran (FARM5080).</summary>
public sealed class NoSuchStepException(Guid build, string step, IReadOnlyList<string> ran)
    : FarmException(
        FarmErrorCodes.NoSuchStep,
        $"build {build} has no explanation for step '{step}': " + (ran.Count == 0
            ? "none of its steps ran (all came from the cache), or none started"
            : $"the steps that ran are {string.Join(", ", ran)}") + ". Name a step by its id as `farm explain BUILD` lists them.");
