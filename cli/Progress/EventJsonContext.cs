using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Coordinator.Builds;

namespace Farm.Cli.Progress;

/// <summary>
/// Source-generated serialization of the build events: no reflection emitted and compiled at start-up, which a warm
/// rebuild (a fraction of a second in all) would otherwise spend on it.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(BuildStarted))]
[JsonSerializable(typeof(BaseImageResolved))]
[JsonSerializable(typeof(StepStarted))]
[JsonSerializable(typeof(StepFinished))]
[JsonSerializable(typeof(StepLog))]
[JsonSerializable(typeof(BuildFinished))]
[JsonSerializable(typeof(BuildFailed))]
internal sealed partial class EventJsonContext : JsonSerializerContext;
