using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Farm.Telemetry.Tests;

/// <summary>One span as an OTLP exporter sent it.</summary>
public sealed record ReceivedSpan(
    string TraceId,
    string SpanId,
    string ParentSpanId,
    string Name,
    string Scope,
    string Service,
    string Instance,
    IReadOnlyDictionary<string, string> Attributes)
{
    public string? this[string attribute] => Attributes.TryGetValue(attribute, out var value) ? value : null;

    public override string ToString() => $"{Service}/{Instance} {Scope} '{Name}' {SpanId}<-{ParentSpanId}";
}

/// <summary>
/// An OTLP/HTTP receiver on a free loopback port: accepts <c>/v1/traces</c> (protobuf, decoded here with
/// Google.Protobuf's wire reader after opentelemetry-proto's trace.proto, so no generated code is needed) and
/// acknowledges <c>/v1/metrics</c> and <c>/v1/logs</c> without reading them.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();

    private OtlpReceiver(WebApplication app, Uri endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    /// <summary>The value for OTEL_EXPORTER_OTLP_ENDPOINT.</summary>
    public Uri Endpoint { get; }

    public IReadOnlyList<ReceivedSpan> Spans => [.. _spans];

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        OtlpReceiver? receiver = null;
        app.MapPost("/v1/traces", async (HttpContext http) =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            foreach (var span in Decode(body.ToArray()))
            {
                receiver!._spans.Enqueue(span);
            }

            return Results.Bytes([], "application/x-protobuf");
        });
        app.MapPost("/v1/{signal}", () => Results.Bytes([], "application/x-protobuf"));
        await app.StartAsync();
        var address = app.Urls.First();
        receiver = new OtlpReceiver(app, new Uri(address));
        return receiver;
    }

    // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    internal static List<ReceivedSpan> Decode(byte[] request)
    {
        var spans = new List<ReceivedSpan>();
        foreach (var resourceSpans in Fields(request, 1))
        {
            var resource = new Dictionary<string, string>();
            var scopes = new List<byte[]>();
            // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
            foreach (var (number, value) in All(resourceSpans))
            {
                if (number == 1)
                {
                    // Resource { repeated KeyValue attributes = 1; }
                    foreach (var kv in Fields(value, 1))
                    {
                        var (key, text) = KeyValue(kv);
                        resource[key] = text;
                    }
                }
                else if (number == 2)
                {
                    scopes.Add(value);
                }
            }

            foreach (var scopeSpans in scopes)
            {
                // ScopeSpans { InstrumentationScope scope = 1 { string name = 1; }; repeated Span spans = 2; }
                var scope = Fields(scopeSpans, 1).Select(s => Fields(s, 1).Select(n => ByteString.CopyFrom(n).ToStringUtf8()).FirstOrDefault()).FirstOrDefault() ?? string.Empty;
                foreach (var span in Fields(scopeSpans, 2))
                {
                    spans.Add(Span(span, scope, resource));
                }
            }
        }

        return spans;
    }

    // Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; repeated KeyValue attributes = 9; }
    private static ReceivedSpan Span(byte[] span, string scope, Dictionary<string, string> resource)
    {
        string traceId = string.Empty, spanId = string.Empty, parent = string.Empty, name = string.Empty;
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (number, value) in All(span))
        {
            switch (number)
            {
                case 1: traceId = Convert.ToHexStringLower(value); break;
                case 2: spanId = Convert.ToHexStringLower(value); break;
                case 4: parent = Convert.ToHexStringLower(value); break;
                case 5: name = ByteString.CopyFrom(value).ToStringUtf8(); break;
                case 9:
                    var (key, text) = KeyValue(value);
                    attributes[key] = text;
                    break;
            }
        }

        return new ReceivedSpan(traceId, spanId, parent, name, scope, resource.GetValueOrDefault("service.name", ""), resource.GetValueOrDefault("service.instance.id", ""), attributes);
    }

    // KeyValue { string key = 1; AnyValue value = 2; } AnyValue { string = 1; bool = 2; int64 = 3; double = 4; }
    private static (string Key, string Value) KeyValue(byte[] kv)
    {
        string key = string.Empty, text = string.Empty;
        var input = new CodedInputStream(kv);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 1)
            {
                key = input.ReadString();
            }
            else if (WireFormat.GetTagFieldNumber(tag) == 2)
            {
                var any = new CodedInputStream(input.ReadBytes().ToByteArray());
                uint anyTag;
                while ((anyTag = any.ReadTag()) != 0)
                {
                    text = WireFormat.GetTagFieldNumber(anyTag) switch
                    {
                        1 => any.ReadString(),
                        2 => any.ReadBool() ? "true" : "false",
                        3 => any.ReadInt64().ToString(System.Globalization.CultureInfo.InvariantCulture),
                        4 => any.ReadDouble().ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => Skip(any),
                    };
                }
            }
            else
            {
                input.SkipLastField();
            }
        }

        return (key, text);
    }

    private static string Skip(CodedInputStream input)
    {
        input.SkipLastField();
        return string.Empty;
    }

    private static IEnumerable<byte[]> Fields(byte[] message, int field) => All(message).Where(f => f.Number == field).Select(f => f.Value);

    /// <summary>The length-delimited fields of a message (other wire types are skipped).</summary>
    private static List<(int Number, byte[] Value)> All(byte[] message)
    {
        var fields = new List<(int, byte[])>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                fields.Add((WireFormat.GetTagFieldNumber(tag), input.ReadBytes().ToByteArray()));
            }
            else
            {
                input.SkipLastField();
            }
        }

        return fields;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
