using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Bough.TestSupport;

/// <summary>
/// A tiny HTTP server in the test process, on one host address (loopback, ::1, the host's own
/// address): every request gets <see cref="Token"/> as its body, so a client can tell that it
/// reached this very server.
/// </summary>
public sealed class TestHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    /// <param name="address">Where to listen; the port is picked by the kernel.</param>
    public TestHttpServer(IPAddress address)
    {
        _listener = new TcpListener(address, 0);
        _listener.Start();
        Address = address;
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = ServeAsync(_stop.Token);
    }

    public IPAddress Address { get; }
    public int Port { get; }
    public string Token { get; } = "host-" + Guid.NewGuid().ToString("N");

    private async Task ServeAsync(CancellationToken ct)
    {
        var response = Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Length: {Token.Length}\r\n\r\n{Token}");
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(ct);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = AnswerAsync(client, response, ct);
        }
    }

    private static async Task AnswerAsync(TcpClient client, byte[] response, CancellationToken ct)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                // One read holds a probe's whole GET; a client that closed without asking gets nothing.
                if (await stream.ReadAsync(new byte[4096], ct) == 0)
                    return;
                await stream.WriteAsync(response, ct);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}
