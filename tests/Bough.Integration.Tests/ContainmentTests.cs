using System.Net;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>
/// A hostile tenant, for real: code inside a sandbox (real VM, the daemon's real nftables firewall) tries to reach
/// the Bough API through the user-mode gateway, servers on the host's loopback and on the host's own address, another
/// sandbox's exposed port, cloud metadata and a LAN host; and the egress policy decides which "public" hosts it
/// reaches. The stand-in hosts live in network namespaces the test creates (documentation and private ranges): no
/// traffic leaves this machine. Every refusal has a control that proves the probe itself works (the same guest
/// reaching a public stand-in, or the host reaching the server), so a test cannot pass because nothing listens.
/// </summary>
[Collection("daemon")]
public sealed class ContainmentTests(DaemonFixture f) : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _cleanup = [];
    private readonly List<string> _sandboxes = [];
    // Addresses differ per run so a leftover of a crashed run never collides.
    private readonly int _octet = Random.Shared.Next(130, 240);
    private BoughClient Client => f.Daemon.Client;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var id in _sandboxes)
        {
            try { await Client.DeleteSandboxAsync(id); }
            catch (BoughApiException) { }
        }
        for (var i = _cleanup.Count - 1; i >= 0; i--)
            await _cleanup[i].DisposeAsync();
    }

    private string Public(int n) => $"203.0.113.{_octet + n}";

    private async Task<T> KeepAsync<T>(Task<T> starting) where T : IAsyncDisposable
    {
        var item = await starting;
        _cleanup.Add(item);
        return item;
    }

    private async Task<Sandbox> CreateAsync(CreateSandboxRequest request)
    {
        var sb = await Client.CreateSandboxAsync(request);
        _sandboxes.Add(sb.Id);
        return sb;
    }

    /// <summary>What an HTTP GET from inside the guest got back (empty when it could not connect).</summary>
    /// <remarks>nc rather than wget: the base image's busybox wget crashes (SIGSEGV) on any URL.</remarks>
    private async Task<string> FetchAsync(string sandboxId, string host, int port)
    {
        var r = await Client.ExecAsync(sandboxId, new ExecRequest
        {
            Cmd = ["sh", "-c", $"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} 2>/dev/null || true"],
        });
        return r.Stdout;
    }

    private async Task AssertGuestReachesAsync(string sandboxId, string host, int port, string token) =>
        Assert.True((await FetchAsync(sandboxId, host, port)).Contains(token, StringComparison.Ordinal),
            $"sandbox {sandboxId} should reach {host}:{port}");

    private async Task AssertGuestRefusedAsync(string sandboxId, string host, int port, string token) =>
        Assert.False((await FetchAsync(sandboxId, host, port)).Contains(token, StringComparison.Ordinal),
            $"sandbox {sandboxId} must not reach {host}:{port}");

    [Fact]
    public async Task A_tenant_reaches_neither_the_api_nor_the_host_nor_another_sandbox_but_does_reach_the_internet()
    {
        var net = await KeepAsync(NetnsHost.StartAsync([Public(0)]));
        var hostAddress = await KeepAsync(HostExtraAddress.AddAsync($"198.51.100.{_octet}"));
        var onLoopback = new TestHttpServer(IPAddress.Loopback);
        var onHostAddress = new TestHttpServer(IPAddress.Parse(hostAddress.Address));
        _cleanup.Add(onLoopback);
        _cleanup.Add(onHostAddress);

        var victim = await CreateAsync(new CreateSandboxRequest { Ports = [8080] });
        var attacker = await CreateAsync(new CreateSandboxRequest()); // internet on: the default
        await Client.UploadFileAsync(victim.Id, "/srv/www/index.html", new MemoryStream("victim-secret"u8.ToArray()));
        await Client.ExecAsync(victim.Id, new ExecRequest { Cmd = ["sh", "-c", "setsid httpd -p 8080 -h /srv/www >/dev/null 2>&1 &"] });
        var victimPort = Assert.Single(victim.Ports).HostPort;

        // Controls: the guest's probe works (a public host answers), and each host-side server answers the host.
        await AssertGuestReachesAsync(attacker.Id, Public(0), net.Port, net.Token);
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            string? body = null;
            await Poll.UntilAsync(async () =>
            {
                try { body = await http.GetStringAsync($"http://127.0.0.1:{victimPort}/index.html"); return true; }
                catch (HttpRequestException) { return false; }
            }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(250));
            Assert.Equal("victim-secret", body);
            Assert.Equal(onLoopback.Token, await http.GetStringAsync($"http://127.0.0.1:{onLoopback.Port}/"));
            Assert.Equal(onHostAddress.Token, await http.GetStringAsync($"http://{hostAddress.Address}:{onHostAddress.Port}/"));
            Assert.Contains("ok", await http.GetStringAsync(new Uri(f.Daemon.Url, "/healthz")), StringComparison.Ordinal);
        }

        // The user-mode gateway 10.0.2.2 is the host's loopback: the API, a loopback server, another sandbox's port.
        await AssertGuestRefusedAsync(attacker.Id, "10.0.2.2", f.Daemon.Url.Port, "ok");
        await AssertGuestRefusedAsync(attacker.Id, "10.0.2.2", onLoopback.Port, onLoopback.Token);
        await AssertGuestRefusedAsync(attacker.Id, "10.0.2.2", victimPort, "victim-secret");
        // The host's own (non-private) address.
        await AssertGuestRefusedAsync(attacker.Id, hostAddress.Address, onHostAddress.Port, onHostAddress.Token);
        // The control again, after the refusals: the guest's network still works.
        await AssertGuestReachesAsync(attacker.Id, Public(0), net.Port, net.Token);
    }

    [Fact]
    public async Task Metadata_and_lan_are_never_reached_and_the_egress_policy_decides_the_rest_also_for_branch_children()
    {
        var lan = $"10.213.{_octet}.5";
        var net = await KeepAsync(NetnsHost.StartAsync(["169.254.169.254", lan, Public(0), Public(1)]));
        var (a, b, port, token) = (Public(0), Public(1), net.Port, net.Token);

        var sb = await CreateAsync(new CreateSandboxRequest());
        await AssertGuestReachesAsync(sb.Id, a, port, token);
        await AssertGuestReachesAsync(sb.Id, b, port, token);
        await AssertGuestRefusedAsync(sb.Id, "169.254.169.254", port, token);
        await AssertGuestRefusedAsync(sb.Id, lan, port, token);

        // A running sandbox's policy changes in place.
        var denied = await Client.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { DenyOut = [b] });
        Assert.Equal([$"{b}/32"], denied.Network!.DenyOut);
        await AssertGuestReachesAsync(sb.Id, a, port, token);
        await AssertGuestRefusedAsync(sb.Id, b, port, token);

        await Client.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { AllowOut = [a], DenyOut = ["0.0.0.0/0"] });
        await AssertGuestReachesAsync(sb.Id, a, port, token);
        await AssertGuestRefusedAsync(sb.Id, b, port, token);

        // A branch child inherits the policy (it runs as a uid of its own, with the same rules).
        var child = Assert.Single((await Client.BranchAsync(sb.Id, new BranchRequest { Count = 1 })).Children);
        _sandboxes.Add(child.Id);
        Assert.Equal([$"{a}/32"], child.Network!.AllowOut);
        await AssertGuestReachesAsync(child.Id, a, port, token);
        await AssertGuestRefusedAsync(child.Id, b, port, token);

        // Pause and resume: the new VM (a new uid) gets the stored policy; internet off cuts everything.
        await Client.PauseAsync(sb.Id);
        await Client.UpdateNetworkAsync(sb.Id, new UpdateNetworkRequest { Internet = false });
        await Client.ResumeAsync(sb.Id);
        await AssertGuestRefusedAsync(sb.Id, a, port, token);
        await AssertGuestReachesAsync(child.Id, a, port, token); // the sibling is unaffected
    }
}
