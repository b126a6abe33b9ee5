using System.Text.Json;
using System.Text.Json.Serialization;
using Farm.Cli.Remote;
using Farm.Contracts;

namespace Farm.Cli;

/// <summary>
/// Every type the CLI writes or reads as JSON, serialized by generated code: the CLI is compiled ahead of time, where
/// reflection-based serialization is not available, and generated code also spares a short command its warm-up.
/// camelCase, as the coordinator's API.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(SubmitBuild))]
[JsonSerializable(typeof(SubmitEnvelope))]
internal sealed partial class CliJson : JsonSerializerContext;
