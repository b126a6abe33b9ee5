using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using Farm.Oci.Net;

namespace Farm.Cli.Tests;

/// <summary>
/// An OTLP/HTTP endpoint on a free loopback port that keeps every request body as it came (traces, logs and metrics,
/// protobuf): a search for a string in what a process exported needs no decoding, as protobuf carries strings as
/// their UTF-8 bytes.
/// </summary>
internal sealed class OtlpSink : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<(string Path, byte[] Body)> _requests = new();

    public OtlpSink()
    {
        var port = FreePorts.Tcp();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    /// <summary>The value for OTEL_EXPORTER_OTLP_ENDPOINT.</summary>
    public string Endpoint { get; }

    /// <summary>The variables that make a process export its traces, metrics and logs here, promptly.</summary>
    public Dictionary<string, string> Environment => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        ["OTEL_BLRP_SCHEDULE_DELAY"] = "200",
        ["OTEL_METRIC_EXPORT_INTERVAL"] = "1000",
    };

    /// <summary>Every body received so far on <paramref name="path"/> (e.g. <c>/v1/traces</c>), or on any path when null.</summary>
    public IReadOnlyList<byte[]> Bodies(string? path = null) => [.. _requests.Where(r => path is null || r.Path == path).Select(r => r.Body)];

    public void Dispose() => _listener.Close();

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var bytes = body.ToArray();
            if (string.Equals(context.Request.Headers["Content-Encoding"], "gzip", StringComparison.OrdinalIgnoreCase))
            {
                using var unzipped = new MemoryStream();
                await using (var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress))
                {
                    await gzip.CopyToAsync(unzipped);
                }

                bytes = unzipped.ToArray();
            }

            _requests.Enqueue((context.Request.Url!.AbsolutePath, bytes));
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }
}
