using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Farm.Testing;

/// <summary>
/// A gate a RUN step (on the host network) polls on this machine's loopback: it stays closed, holding the step
/// running, until the test answers; time is never what opens it.
/// </summary>
public static class LoopbackGate
{
    /// <summary>Runs <paramref name="wait"/> while 127.0.0.1:<paramref name="port"/> answers HTTP requests with an empty 200.</summary>
    public static async Task AnsweringAsync(int port, Func<Task> wait)
    {
        ArgumentNullException.ThrowIfNull(wait);
        using var answer = new CancellationTokenSource();
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        var server = AnswerAsync(listener, answer.Token);
        try
        {
            await wait();
        }
        finally
        {
            await answer.CancelAsync();
            listener.Stop();
            await server;
        }
    }

    /// <summary>Answers every connection with an empty 200 until cancelled.</summary>
    private static async Task AnswerAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        var response = Encoding.ASCII.GetBytes("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        try
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync(cancellationToken);
                var stream = client.GetStream();
                _ = await stream.ReadAsync(new byte[4096], cancellationToken);
                await stream.WriteAsync(response, cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
    }
}
