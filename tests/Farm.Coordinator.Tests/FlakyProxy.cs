using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Farm.Coordinator.Tests;

/// <summary>
/// A TCP proxy to 127.0.0.1:<c>target</c> that closes every connection at once until <see cref="Open"/> is set: a
/// blob store that fails with a transport fault, then recovers. Once open, it can also fail the first plain-HTTP
/// API checks (<c>GET /v2/</c>) a registry client sends (<see cref="FailApiChecks"/>).
/// </summary>
public sealed class FlakyProxy : IAsyncDisposable
{
    /// <summary>How an API check is failed.</summary>
    public enum ApiCheckFault
    {
        /// <summary>Answered 503 Service Unavailable, as an overloaded registry or its load balancer does.</summary>
        ServiceUnavailable,

        /// <summary>The connection is reset once the request arrived.</summary>
        Reset,
    }

    private const string ServiceUnavailable = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    private int _apiFaultsLeft;
    private int _apiFaults;
    private ApiCheckFault _apiFault;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly int _target;
    private int _dropped;

    public FlakyProxy(int target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public volatile bool Open;

    public int Dropped => Volatile.Read(ref _dropped);

    /// <summary>How many API checks were failed so far.</summary>
    public int ApiCheckFaults => Volatile.Read(ref _apiFaults);

    /// <summary>Fails the next <paramref name="count"/> API checks that arrive as plain HTTP with <paramref name="fault"/>; everything else passes.</summary>
    public void FailApiChecks(int count, ApiCheckFault fault)
    {
        _apiFault = fault;
        Volatile.Write(ref _apiFaultsLeft, count);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (!Open)
            {
                Interlocked.Increment(ref _dropped);
                client.Client.LingerState = new LingerOption(true, 0);
                client.Dispose();
                continue;
            }

            _ = PipeAsync(client);
        }
    }

    private async Task PipeAsync(TcpClient client)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                var a = client.GetStream();
                // A client's first bytes: a TLS hello (passed on), or a request line to look at.
                var first = new byte[16384];
                var read = await a.ReadAsync(first, _stop.Token);
                if (IsApiCheck(first.AsSpan(0, read)) && Interlocked.Decrement(ref _apiFaultsLeft) >= 0)
                {
                    Interlocked.Increment(ref _apiFaults);
                    if (_apiFault == ApiCheckFault.ServiceUnavailable)
                    {
                        await a.WriteAsync(Encoding.ASCII.GetBytes(ServiceUnavailable), _stop.Token);
                    }
                    else
                    {
                        client.Client.LingerState = new LingerOption(true, 0);
                    }

                    return;
                }

                await upstream.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                var b = upstream.GetStream();
                await b.WriteAsync(first.AsMemory(0, read), _stop.Token);
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // One side closed: the connection is over.
            }
        }
    }

    private static bool IsApiCheck(ReadOnlySpan<byte> request) => request.StartsWith("GET /v2/ "u8);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
