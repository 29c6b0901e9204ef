using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Bough.Contracts;

namespace Bough.E2b.Tests;

/// <summary>
/// <c>sandbox.getHost(port)</c> through the unmodified SDK, and a WebSocket through the same route, against
/// servers in a real guest (the base template has python3).
/// </summary>
[Collection("e2b")]
public sealed class E2bHostTests(E2bFixture f)
{
    [Fact]
    public async Task GetHost_names_a_guest_port_that_node_fetches_through_the_daemon()
    {
        var r = await f.Sdk.RunAsync("host", new { id = f.Shared, port = 8125, content = "hello via getHost" });
        Assert.Equal($"8125-{f.Shared}.localhost:{f.Daemon.Url.Port}", E2bFixture.Str(r, "host"));
        Assert.Equal(200, r.GetProperty("status").GetInt32());
        Assert.Equal("hello via getHost", E2bFixture.Str(r, "body"));
    }

    /// <summary>A stdlib-only WebSocket echo server (the handshake and unfragmented frames under 126 bytes).</summary>
    private const string EchoServer = """
        import base64, hashlib, socket, sys, threading
        GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        def serve(c):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk: return
                head += chunk
            key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            f = c.makefile("rb")
            while True:
                h = f.read(2)
                if len(h) < 2: return
                op, n = h[0] & 15, h[1] & 127
                mask = f.read(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(f.read(n)))
                if op == 8:
                    c.sendall(b"\x88\x00"); return
                out = b"echo:" + payload
                c.sendall(bytes([0x80 | op, len(out)]) + out)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(sys.argv[1])))
        s.listen()
        while True:
            conn, _ = s.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        """;

    [Fact]
    public async Task A_websocket_upgrade_is_forwarded_both_ways()
    {
        const int port = 8126;
        var client = f.Daemon.Client;
        await client.UploadFileAsync(f.Shared, "/tmp/ws-echo.py", new MemoryStream(Encoding.UTF8.GetBytes(EchoServer)));
        await client.ExecAsync(f.Shared, new ExecRequest { Cmd = ["sh", "-c", $"(setsid python3 /tmp/ws-echo.py {port} >/tmp/ws-echo.log 2>&1 &)"] });

        using var invoker = new HttpMessageInvoker(new SocketsHttpHandler { ConnectCallback = ConnectLocalhostAsync });
        var uri = new Uri($"ws://{port}-{f.Shared}.localhost:{f.Daemon.Url.Port}/echo");
        ClientWebSocket? ws = null;
        Assert.True(await Poll.UntilAsync(async () =>
        {
            ws?.Dispose();
            ws = new ClientWebSocket();
            try { await ws.ConnectAsync(uri, invoker, CancellationToken.None); return true; }
            catch (WebSocketException) { return false; }
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(250)), "the guest's WebSocket server never answered through the route");
        using (ws)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            foreach (var message in new[] { "ping", "second message" })
            {
                await ws!.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, timeout.Token);
                var buffer = new byte[256];
                var received = await ws.ReceiveAsync(buffer, timeout.Token);
                Assert.Equal(WebSocketMessageType.Text, received.MessageType);
                Assert.Equal("echo:" + message, Encoding.UTF8.GetString(buffer, 0, received.Count));
            }
            await ws!.CloseAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
        }
    }

    /// <summary>Maps <c>*.localhost</c> to 127.0.0.1 as browsers do (RFC 6761); this host's resolver does not.</summary>
    private static async ValueTask<Stream> ConnectLocalhostAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            var host = context.DnsEndPoint.Host;
            var address = host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
                : (await Dns.GetHostAddressesAsync(host, ct))[0];
            await socket.ConnectAsync(address, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
