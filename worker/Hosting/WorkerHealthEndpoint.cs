using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Farm.Worker.Hosting;

/// <summary>
/// A worker process's probes on <see cref="WorkerOptions.HealthPort"/>: <c>/livez</c> answers 200 while the process
/// runs; <c>/readyz</c> answers 200 once the start-up recovery ran and the firewall is installed, while the bus is
/// connected and the worker is not draining after SIGTERM, and 503 with the reason otherwise.
/// </summary>
/// <remarks>
/// An <see cref="HttpListener"/>, like the Prometheus exporter's: a worker has no web server of its own, and these two
/// answers do not justify one. It is registered before the bus so that it stops after it, and keeps answering
/// "draining" while running jobs finish.
/// </remarks>
public sealed partial class WorkerHealthEndpoint(
    IOptions<WorkerOptions> options,
    WorkerReadiness readiness,
    IHostApplicationLifetime lifetime,
    IServiceProvider services,
    ILogger<WorkerHealthEndpoint> logger) : IHostedService, IDisposable
{
    /// <summary>Answers 200 while the process runs.</summary>
    public const string LivenessPath = "/livez";

    /// <summary>Answers 200 while the worker should be given jobs, 503 with the reason otherwise.</summary>
    public const string ReadinessPath = "/readyz";

    private HttpListener? _listener;
    private Task? _loop;

    /// <exception cref="WorkerHealthEndpointException">The address and port cannot be listened on (FARM3050).</exception>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var (address, port) = (options.Value.HealthAddress, options.Value.HealthPort);
        if (port == 0)
        {
            return Task.CompletedTask;
        }

        var host = IPAddress.TryParse(address, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address;
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://{host}:{port.ToString(CultureInfo.InvariantCulture)}/");
        try
        {
            listener.Start();
        }
        catch (HttpListenerException e)
        {
            listener.Close();
            throw new WorkerHealthEndpointException(
                $"The worker's health endpoint cannot listen on {address}:{port} ({e.Message}): set Farm:Worker:HealthPort to a free port, or 0 to serve none, and Farm:Worker:HealthAddress to an address of this machine or +.", e);
        }

        _listener = listener;
        _loop = Task.Run(() => ServeAsync(listener), CancellationToken.None);
        LogListening(logger, address, port);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_listener is null)
        {
            return;
        }

        _listener.Stop();
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => _listener?.Close();

    /// <summary>Whether the worker should be given jobs now, and if not, why (the body of a 503).</summary>
    public (bool Ready, string Reason) Readiness()
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return (false, "draining: the worker is stopping and takes no more jobs");
        }

        if (!readiness.Recovered)
        {
            return (false, "starting: recovery and the RUN steps' firewall are not done yet");
        }

        if (services.GetService<IBusControl>() is not { } bus)
        {
            return (false, "no bus is configured");
        }

        var health = bus.CheckHealth();
        return health.Status == BusHealthStatus.Healthy
            ? (true, "ready")
            : (false, $"the bus is not connected ({health.Status}): {health.Description}");
    }

    private async Task ServeAsync(HttpListener listener)
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                // Stopped.
                return;
            }

            try
            {
                await AnswerAsync(context).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The prober hung up; the next one gets its answer.
                LogAnswerFailed(logger, e.Message);
            }
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        var response = context.Response;
        var (status, body) = context.Request.Url?.AbsolutePath switch
        {
            LivenessPath => (200, "alive"),
            ReadinessPath => Readiness() is var (ready, reason) && ready ? (200, reason) : (503, reason),
            _ => (404, "not found: this endpoint serves " + LivenessPath + " and " + ReadinessPath),
        };
        var bytes = Encoding.UTF8.GetBytes(body + "\n");
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
        response.Close();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Health endpoint (/livez, /readyz) listening on {Address}:{Port}")]
    private static partial void LogListening(ILogger logger, string address, int port);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A health probe hung up before its answer: {Reason}")]
    private static partial void LogAnswerFailed(ILogger logger, string reason);
}

/// <summary>FARM3050: the worker's health endpoint cannot listen on its address and port.</summary>
public sealed class WorkerHealthEndpointException(string message, Exception? innerException = null)
    : FarmException(FarmErrorCodes.WorkerHealthEndpoint, message, innerException);
