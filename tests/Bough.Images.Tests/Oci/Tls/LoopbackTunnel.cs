using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace Bough.Images.Tests.Oci.Tls;

/// <summary>
/// A loopback forwarder in front of a plain-HTTP loopback server, recording what clients send. With a
/// <see cref="TestTls"/> it accepts HTTPS (so the shared <c>TokenServer</c>, an HttpListener that speaks
/// plain HTTP only, can act as a token service reached over HTTPS, as real ones are); without one it
/// forwards plain bytes, and <see cref="ClientBytes"/> is what went over the wire in clear.
/// </summary>
public sealed class LoopbackTunnel : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly MemoryStream _recorded = new();
    private readonly Lock _gate = new();
    private readonly Task _loop;

    public LoopbackTunnel(int targetPort, TestTls? tls = null)
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(() => AcceptLoopAsync(tls, targetPort));
    }

    public int Port { get; }

    /// <summary>Everything clients sent so far (decrypted when the tunnel terminates TLS), as Latin-1 text.</summary>
    public string ClientBytes
    {
        get { lock (_gate) return Encoding.Latin1.GetString(_recorded.ToArray()); }
    }

    private async Task AcceptLoopAsync(TestTls? tls, int targetPort)
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _ = Task.Run(() => PipeAsync(client, tls, targetPort));
        }
    }

    private async Task PipeAsync(TcpClient client, TestTls? tls, int targetPort)
    {
        using (client)
        using (var target = new TcpClient())
        {
            try
            {
                Stream front = client.GetStream();
                if (tls is not null)
                {
                    var ssl = new SslStream(front);
                    await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = tls.Server }, _stop.Token);
                    front = ssl;
                }
                await using (front)
                {
                    await target.ConnectAsync(IPAddress.Loopback, targetPort, _stop.Token);
                    var back = target.GetStream();
                    var up = CopyRecordingAsync(front, back);
                    var down = back.CopyToAsync(front, _stop.Token);
                    await Task.WhenAny(up, down);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
                                          or System.Security.Authentication.AuthenticationException) { }
        }
    }

    private async Task CopyRecordingAsync(Stream from, Stream to)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await from.ReadAsync(buffer, _stop.Token)) > 0)
        {
            lock (_gate) _recorded.Write(buffer, 0, n);
            await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
        _recorded.Dispose();
    }
}
