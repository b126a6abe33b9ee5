using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Coordinator.Builds;
using Farm.Dockerfile.Context;
using Farm.Oci;
using MassTransit.Serialization;

namespace Farm.Fuzzing;

/// <summary>
/// A <see cref="SubmitBuild"/> as the coordinator reads it, from the bytes of a <c>POST /builds</c> body or a queue
/// message: bound with the JSON options minimal APIs use (a <see cref="JsonException"/> there is the 400 FARM4211 of
/// <c>ApiErrorMiddleware</c>), and deserialized with MassTransit's; then <see cref="SubmissionValidation"/>, then what
/// the build service and the orchestrator read of an accepted submission, up to the build graph. A refusal must be a
/// FarmException; anything else that escapes would be a 500 (HTTP) or a faulted message (queue).
/// </summary>
public sealed class SubmissionFuzzTarget : IFuzzTarget
{
    private const string Store = "oci-layout:/var/lib/farm/store";

    private static readonly string[] Granted = [Entitlements.NetworkHost];

    /// <summary>What <c>app.MapPost("/builds", (SubmitBuild submit, ...) => ...)</c> binds the body with, unconfigured.</summary>
    private static readonly JsonSerializerOptions HttpOptions = new Microsoft.AspNetCore.Http.Json.JsonOptions().SerializerOptions;

    // Nested values go deeper than the writer's default 64 (1000 with JsonNode).
    private static readonly JsonSerializerOptions WriteOptions = new() { MaxDepth = 1_000_000 };

    private static readonly string[] Keys =
    [
        "buildId", "dockerfile", "dockerfilePath", "contextDigest", "contextIndexDigest", "buildArgs", "labels", "target",
        "tags", "push", "noCache", "pull", "contextDirectory", "dockerfileLocation", "output", "entitlements",
    ];

    private static readonly string[] Values =
    [
        "null", "true", "false", "0", "-1", "1.5", "1e400", "-0", "2147483648", "9223372036854775808", "\"\"", "\" \"", "[]",
        "{}", "[null]", "{\"a\":null}", "{\"\":\"\"}", "[\"\"]", "\"x\"", "\"00000000-0000-0000-0000-000000000000\"",
        "\"ffffffff-ffff-ffff-ffff-ffffffffffff\"", "\"not-a-guid\"", "\"\\ud800\"", "\"\\udc00\\ud800\"", "\"\\u0000\"",
        "\"sha256:\"", "\"sha256:" + new string('0', 64) + "\"", "\"../../etc\"", "\"/\"", "[1,2]", "{\"a\":1}", "[[]]",
        "{\"a\":{\"b\":[]}}", "\"network.host\"", "[\"network.host\"]", "[\"network.host\",null]", "\"FROM a\\nRUN x\"",
    ];

    private readonly IReadOnlyList<string> _dockerfiles;

    public SubmissionFuzzTarget()
    {
        _dockerfiles = [.. FuzzCorpus.Dockerfiles.Select(b => Encoding.UTF8.GetString(b))];
        Seeds = [.. _dockerfiles.Select((text, i) => Encoding.UTF8.GetBytes(ValidSubmission(text, i)))];
    }

    public string Name => "submission";

    public string Extension => "json";

    public IReadOnlyList<byte[]> Seeds { get; }

    /// <summary>A submission the farm accepts, as <c>farm build --farm</c> sends it; some set every optional field.</summary>
    public static string ValidSubmission(string dockerfile, int variant)
    {
        var submit = new SubmitBuild
        {
            BuildId = variant % 2 == 0 ? Guid.Empty : new Guid(variant, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
            Dockerfile = dockerfile,
            ContextDigest = "sha256:" + new string('a', 64),
            ContextIndexDigest = "sha256:" + new string('b', 64),
            BuildArgs = variant % 3 == 0 ? new Dictionary<string, string> { ["A"] = "1", ["BASE"] = "busybox" } : new Dictionary<string, string>(),
            Labels = variant % 4 == 0 ? new Dictionary<string, string> { ["org.example"] = "x" } : new Dictionary<string, string>(),
            Target = variant % 5 == 0 ? "build" : null,
            Tags = variant % 2 == 0 ? ["127.0.0.1:5100/app:1.0", "app:latest"] : [],
            Push = variant % 2 == 1,
            NoCache = variant % 3 == 1,
            Pull = variant % 5 == 1,
            Entitlements = variant % 7 == 0 ? ["network.host"] : [],
        };
        return JsonSerializer.Serialize(submit, HttpOptions);
    }

    public byte[] Mutate(byte[] input, Random random, FuzzScale scale)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(random);
        var op = random.Next(10);
        if (op < 2)
        {
            return TextMutator.FlipBytes(input, random);
        }

        if (op < 4)
        {
            // Text-level: tokens, deletions, splices and generated structures on the JSON itself.
            return Encoding.UTF8.GetBytes(TextMutator.Mutate(Encoding.UTF8.GetString(input), random, _dockerfiles, scale));
        }

        JsonObject? json;
        try
        {
            json = JsonNode.Parse(input, documentOptions: new JsonDocumentOptions { MaxDepth = 100_000 }) as JsonObject;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            json = null;
        }

        if (json is null)
        {
            return TextMutator.FlipBytes(input, random);
        }

        try
        {
            return MutateJson(json, op, random, scale);
        }
        catch (Exception e) when (e is InvalidOperationException or JsonException or ArgumentException)
        {
            // A value the writer refuses (a lone surrogate escape): change the bytes instead.
            return TextMutator.FlipBytes(input, random);
        }
    }

    private byte[] MutateJson(JsonObject json, int op, Random random, FuzzScale scale)
    {
        var key = Keys[random.Next(Keys.Length)];
        switch (op)
        {
            case 4 or 5:
                json[key] = JsonNode.Parse(Values[random.Next(Values.Length)]);
                break;
            case 6:
                json.Remove(key);
                break;
            case 7:
                var dockerfile = json["dockerfile"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
                json["dockerfile"] = TextMutator.Mutate(dockerfile, random, _dockerfiles, scale);
                break;
            case 8:
                json[key] = Nested(random, scale);
                break;
            default:
                // Maps and lists with odd members: null values, empty and huge keys, duplicates in the text.
                var text = json.ToJsonString(WriteOptions);
                var member = random.Next(4) switch
                {
                    0 => $"\"{key}\":{Values[random.Next(Values.Length)]},",
                    1 => $"\"{key.ToUpperInvariant()}\":{Values[random.Next(Values.Length)]},",
                    2 => $"\"buildArgs\":{{\"{new string('k', random.Next(1, scale.MaxRepeat))}\":null}},",
                    _ => $"\"tags\":[{string.Join(',', Enumerable.Repeat("\"t\"", random.Next(1, scale.MaxRepeat)))}],",
                };
                return Encoding.UTF8.GetBytes(text.Insert(1, member));
        }

        return Encoding.UTF8.GetBytes(json.ToJsonString(WriteOptions));
    }

    private static JsonNode? Nested(Random random, FuzzScale scale)
    {
        var depth = 1 + random.Next(Math.Min(scale.MaxRepeat, 2_000));
        var open = random.Next(2) == 0 ? "[" : "{\"a\":";
        var close = open == "[" ? "]" : "}";
        var text = string.Concat(Enumerable.Repeat(open, depth)) + "1" + string.Concat(Enumerable.Repeat(close, depth));
        return JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = depth + 1 });
    }

    public string Run(byte[] input)
    {
        // POST /builds: a body that does not bind is the binding's BadHttpRequestException (400, FARM4211).
        SubmitBuild? posted;
        try
        {
            posted = JsonSerializer.Deserialize<SubmitBuild>(input, HttpOptions);
        }
        catch (JsonException)
        {
            posted = null;
        }

        var outcome = posted is null ? FarmErrorCodes.InvalidSubmission : Accept(posted);

        // The queue: MassTransit's serializer, then the consumer's BuildService.Submit. A message that does not
        // deserialize is faulted by MassTransit before the consumer runs.
        SubmitBuild? queued;
        try
        {
            queued = JsonSerializer.Deserialize<SubmitBuild>(input, SystemTextJsonMessageSerializer.Options);
        }
        catch (JsonException)
        {
            queued = null;
        }

        if (queued is not null)
        {
            _ = Accept(queued);
        }

        return outcome;
    }

    /// <summary>What the build service and the orchestrator do with the submission, up to its build graph.</summary>
    private static string Accept(SubmitBuild submit)
    {
        try
        {
            SubmissionValidation.Validate(submit, Store);

            // BuildService.Submit and LoadRequestAsync: the log line, the id, the entitlements, the index digest.
            _ = submit.Tags.Count == 0 ? "(no tags)" : string.Join(", ", submit.Tags);
            _ = submit with { BuildId = submit.BuildId == Guid.Empty ? Guid.NewGuid() : submit.BuildId };
            _ = submit.Entitlements.FirstOrDefault(e => !Granted.Contains(e, StringComparer.Ordinal));
            _ = Digest.TryParse(submit.ContextIndexDigest, out _);
            var request = BuildRequest.From(submit, new ContextIndex([]), Store);
            RequireNoNulls(request);

            // BuildOrchestrator.RunCoreAsync: parse, then plan with the build args and the target.
            DockerfileFuzzTarget.Plan(request.Dockerfile, request.DockerfilePath, request.BuildArgs, request.Target);
            return "ok";
        }
        catch (FarmException e)
        {
            return e.Code;
        }
    }

    /// <summary>The values the build reads later (labels into the config, tags to push, entitlements) hold no null.</summary>
    private static void RequireNoNulls(BuildRequest request)
    {
        if (request.DockerfilePath is null || request.Tags is null || request.Tags.Any(t => t is null)
            || request.BuildArgs is null || request.BuildArgs.Any(p => p.Value is null)
            || request.Labels is null || request.Labels.Any(p => p.Value is null)
            || request.Entitlements is null || request.Entitlements.Any(e => e is null))
        {
            throw new InvalidOperationException("The submission was accepted with a null where the build reads a value (dockerfilePath, tags, buildArgs, labels or entitlements).");
        }
    }
}
