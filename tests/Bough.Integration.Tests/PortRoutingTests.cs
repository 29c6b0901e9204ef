using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// Port routing against the real daemon and real VMs: <c>http://PORT-ID.localhost:DAEMONPORT/</c> reaches a
/// busybox httpd in the guest. The client resolves every <c>*.localhost</c> name to 127.0.0.1 itself, as
/// browsers and curl do (RFC 6761); this host's resolver does not, and the Host header is what is under test.
/// </summary>
[Collection("daemon")]
public sealed class PortRoutingTests(DaemonFixture f) : IDisposable
{
    private readonly HttpClient _web = new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, ct) =>
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
        },
    }) { Timeout = TimeSpan.FromSeconds(30) };

    public void Dispose() => _web.Dispose();

    private string Url(int port, string id, string path = "/") => $"http://{port}-{id}.localhost:{f.Daemon.Url.Port}{path}";

    private async Task StartHttpdAsync(string id, int port, string content)
    {
        await f.Daemon.Client.ExecAsync(id, new ExecRequest
        {
            Cmd = ["sh", "-c", $"mkdir -p /tmp/www{port} && printf '%s' \"$0\" > /tmp/www{port}/index.html && " +
                               $"(setsid httpd -p {port} -h /tmp/www{port} >/dev/null 2>&1 &)", content],
        });
    }

    private async Task<string?> GetWhenUpAsync(string url)
    {
        string? body = null;
        await Poll.UntilAsync(async () =>
        {
            using var r = await _web.GetAsync(url);
            if (r.StatusCode != HttpStatusCode.OK) return false;
            body = await r.Content.ReadAsStringAsync();
            return true;
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(250));
        return body;
    }

    [Fact]
    public async Task A_guest_http_server_is_reached_by_port_and_sandbox_name_without_the_api_token()
    {
        var id = f.Primary.Id;
        await StartHttpdAsync(id, 8123, "routed into the guest");
        Assert.Equal("routed into the guest", await GetWhenUpAsync(Url(8123, id, "/index.html")));

        // The guest's own answers pass as they are: its 404 is not turned into a daemon problem.
        using var missing = await _web.GetAsync(Url(8123, id, "/no-such-page"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.NotEqual("application/problem+json", missing.Content.Headers.ContentType?.MediaType);

        // A sandbox's name never reaches the API, even with the token: this is the guest's httpd answering.
        using var api = new HttpRequestMessage(HttpMethod.Get, Url(8123, id, "/v1/sandboxes"));
        api.Headers.Authorization = new AuthenticationHeaderValue("Bearer", f.Daemon.Token);
        using var apiAnswer = await _web.SendAsync(api);
        Assert.Equal(HttpStatusCode.NotFound, apiAnswer.StatusCode);
        Assert.DoesNotContain(id, await apiAnswer.Content.ReadAsStringAsync());

        // Upper case is the same name (DNS is case-insensitive).
        Assert.Equal("routed into the guest", await _web.GetStringAsync(Url(8123, id.ToUpperInvariant(), "/index.html")));
    }

    [Fact]
    public async Task A_port_published_at_create_and_a_resumed_sandbox_are_routed_too()
    {
        var sb = await f.Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest { Ports = [8080] });
        try
        {
            await StartHttpdAsync(sb.Id, 8080, "published");
            await StartHttpdAsync(sb.Id, 8124, "dynamic");
            Assert.Equal("published", await GetWhenUpAsync(Url(8080, sb.Id, "/index.html")));
            Assert.Equal("dynamic", await GetWhenUpAsync(Url(8124, sb.Id, "/index.html")));

            // A resumed VM is a new QEMU process without the old forward: the route adds one again.
            await f.Daemon.Client.PauseAsync(sb.Id);
            using (var paused = await _web.GetAsync(Url(8124, sb.Id, "/index.html")))
            {
                Assert.Equal(HttpStatusCode.BadGateway, paused.StatusCode);
                Assert.Equal(ErrorCodes.SandboxNotRunning, (await Problems.ReadAsync(paused)).Code);
            }
            await f.Daemon.Client.ResumeAsync(sb.Id);
            Assert.Equal("dynamic", await GetWhenUpAsync(Url(8124, sb.Id, "/index.html")));
        }
        finally
        {
            await f.Daemon.Client.DeleteSandboxAsync(sb.Id);
        }
    }

    [Fact]
    public async Task An_unknown_sandbox_and_a_closed_port_are_502_problems()
    {
        using var unknown = await _web.GetAsync(Url(8080, "sb-nosuchsandbox"));
        Assert.Equal(HttpStatusCode.BadGateway, unknown.StatusCode);
        Assert.Equal(ErrorCodes.SandboxNotFound, (await Problems.ReadAsync(unknown)).Code);

        using var closed = await _web.GetAsync(Url(8999, f.Primary.Id));
        Assert.Equal(HttpStatusCode.BadGateway, closed.StatusCode);
        Assert.Equal("port_unreachable", (await Problems.ReadAsync(closed)).Code);
    }

    [Fact]
    public async Task Other_localhost_names_are_still_refused()
    {
        using var r = await _web.GetAsync($"http://evil.localhost:{f.Daemon.Url.Port}/healthz");
        Assert.Equal(HttpStatusCode.MisdirectedRequest, r.StatusCode);
        Assert.Equal(ErrorCodes.HostNotAllowed, (await Problems.ReadAsync(r)).Code);
    }
}
