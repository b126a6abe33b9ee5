using System.Diagnostics;
using System.Text.Json.Nodes;
using Farm.Cli.Build;
using Farm.Contracts;
using Farm.Telemetry;
using OpenTelemetry.Trace;

namespace Farm.Cli.Progress;

/// <summary>
/// The CLI's part of a build's trace (README.md, "Telemetry"): a root span of the <c>Farm.Cli</c> source (<c>farm
/// build</c>, <c>farm submit</c>) that the context's packing and upload, the <c>POST /builds</c> request (its
/// <c>traceparent</c>), the <c>SubmitBuild</c> message (MassTransit carries <see cref="Activity.Current"/>) and the
/// embedded farm's spans descend from. Exported as service <c>farm-cli</c> over OTLP only when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; otherwise nothing is started and the exporter is never loaded.
/// The trace id is the first rawjson event (<c>TraceStarted</c>) and the last stderr line (<c>trace ID</c>) otherwise.
/// </summary>
internal sealed class BuildTrace : IDisposable
{
    /// <summary>The service name the CLI's spans are exported under.</summary>
    public const string ServiceName = "farm-cli";

    private static readonly ActivitySource Source = new(FarmTelemetry.Cli);
    private readonly IDisposable? _provider;
    private readonly Activity? _root;
    private readonly TextWriter? _status;

    private BuildTrace(IDisposable? provider, Activity? root, TextWriter? status)
    {
        _provider = provider;
        _root = root;
        _status = status;
    }

    /// <summary>The trace's id (32 hex digits), or null when tracing is off.</summary>
    public string? TraceId => _root?.TraceId.ToHexString();

    /// <summary>
    /// Starts the root span <paramref name="name"/> when tracing is on (<paramref name="mode"/>: embedded, remote or
    /// queue); <paramref name="status"/> (stderr in plain and
    /// tty modes, null for rawjson) gets <c>trace ID</c> when the span ends.
    /// </summary>
    public static BuildTrace Start(string name, string mode, BuildSettings settings, TextWriter? status)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(FarmTelemetry.OtlpEndpointVariable)))
        {
            // Not even a call into the exporter's code: a build without tracing pays nothing for it.
            return new BuildTrace(null, null, null);
        }

        return Traced(name, mode, settings, status);
    }

    /// <summary>A child span of the current one (packing, uploading the context), or null when tracing is off.</summary>
    public static Activity? StartChild(string name) => Source.StartActivity(name, ActivityKind.Internal);

    /// <summary>
    /// <paramref name="renderer"/>, seeing the events: <c>TraceStarted</c> goes first (rawjson prints it; the others
    /// ignore types they do not know) and the <c>ContextPacked</c> digest lands on the root span.
    /// </summary>
    public IProgressRenderer Observe(IProgressRenderer renderer)
    {
        ArgumentNullException.ThrowIfNull(renderer);
        if (_root is null)
        {
            return renderer;
        }

        renderer.Render(BuildProgress.Typed("TraceStarted", new JsonObject { ["traceId"] = TraceId }));
        return new ObservingRenderer(renderer, _root);
    }

    /// <summary>Marks the build failed on the root span (the exception's message carries its FARM code); false, for an exception filter.</summary>
    public bool Failed(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is FarmException farm)
        {
            _root?.SetTag("farm.error_code", farm.Code);
        }

        _root?.SetStatus(ActivityStatusCode.Error, exception.Message);
        return false;
    }

    public void Dispose()
    {
        if (_root is null)
        {
            return;
        }

        _root.Stop();
        _root.Dispose();
        // Flushes the spans before the process exits.
        _provider?.Dispose();
        if (_status is not null)
        {
            _status.WriteLine($"trace {TraceId}");
            _status.Flush();
        }
    }

    private static BuildTrace Traced(string name, string mode, BuildSettings settings, TextWriter? status)
    {
        // The embedded farm's coordinator and worker run in this process: their spans are exported from here.
        TracerProvider? provider = FarmTelemetry.StartTracing(ServiceName, null, [FarmTelemetry.Coordinator, FarmTelemetry.Worker, .. FarmTelemetry.PropagatingSources]);
        var root = Source.StartActivity(name, ActivityKind.Client);
        root?.SetTag("farm.mode", mode);
        root?.SetTag("farm.tags", string.Join(",", settings.Tags));
        root?.SetTag("farm.target", settings.Target);
        root?.SetTag("farm.dockerfile", settings.DockerfilePath);
        return new BuildTrace(provider, root, status);
    }

    private sealed class ObservingRenderer(IProgressRenderer inner, Activity root) : IProgressRenderer
    {
        public void Render(JsonObject buildEvent)
        {
            ArgumentNullException.ThrowIfNull(buildEvent);
            if (BuildProgress.Str(buildEvent, "type") == "ContextPacked")
            {
                root.SetTag("farm.context_digest", BuildProgress.Str(buildEvent, "digest"));
            }

            inner.Render(buildEvent);
        }

        public void Complete() => inner.Complete();

        public void Dispose() => inner.Dispose();
    }
}
