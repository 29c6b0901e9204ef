using System.Net;
using System.Net.Sockets;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

[Collection("daemon")]
public sealed class LifecycleTests(DaemonFixture f)
{
    private BoughClient Client => f.Daemon.Client;

    [Fact]
    public async Task Sandbox_json_has_the_documented_fields()
    {
        var sb = await Client.GetSandboxAsync(f.Primary.Id);
        Assert.Equal(SandboxStates.Running, sb.State);
        Assert.Equal("base", sb.Image);
        Assert.Equal(1, sb.Vcpus);
        Assert.Equal(256, sb.MemoryMiB);
        Assert.Equal("integration", sb.Metadata["suite"]);
        Assert.True(sb.CreatedAt > DateTimeOffset.UtcNow.AddHours(-1));
        Assert.Contains(await Client.ListSandboxesAsync(), s => s.Id == sb.Id);
    }

    [Fact]
    public async Task Five_sandboxes_run_at_once_and_delete_leaves_no_qemu()
    {
        var created = await Task.WhenAll(Enumerable.Range(0, 5).Select(i =>
            Client.CreateSandboxAsync(new CreateSandboxRequest { Metadata = new() { ["n"] = i.ToString() } })));
        try
        {
            Assert.Equal(5, created.Select(s => s.Id).Distinct().Count());
            var answers = await Task.WhenAll(created.Select(s =>
                Client.ExecAsync(s.Id, new ExecRequest { Cmd = ["hostname"] })));
            for (var i = 0; i < 5; i++)
                Assert.Equal(created[i].Id + "\n", answers[i].Stdout);

            // Files are private to each sandbox.
            await Client.UploadFileAsync(created[0].Id, "/root/only-here", new MemoryStream([42]));
            var elsewhere = await Client.ExecAsync(created[1].Id, new ExecRequest { Cmd = ["ls", "/root/only-here"] });
            Assert.NotEqual(0, elsewhere.ExitCode);
        }
        finally
        {
            foreach (var s in created)
            {
                var dir = Path.Combine(f.Daemon.DataDir, "sandboxes", s.Id);
                await Client.DeleteSandboxAsync(s.Id);
                Assert.Empty(TestEnvironment.QemuProcessesUnder(dir));
                Assert.False(Directory.Exists(dir), $"{dir} still exists");
                if (s.Pid is { } pid) Assert.False(HostProcess.IsAlive(pid), $"QEMU {pid} survived delete");
                var ex = await Assert.ThrowsAsync<BoughApiException>(() => Client.GetSandboxAsync(s.Id));
                Assert.Equal(404, ex.Status);
            }
        }
    }

    [Fact]
    public async Task Ports_are_exposed_and_internet_can_be_cut()
    {
        var open = await Client.CreateSandboxAsync(new CreateSandboxRequest { Ports = [8080] });
        var closed = await Client.CreateSandboxAsync(new CreateSandboxRequest { Internet = false });
        try
        {
            var port = Assert.Single(open.Ports);
            Assert.Equal(8080, port.GuestPort);
            Assert.Equal("127.0.0.1", port.HostIp);
            Assert.InRange(port.HostPort, 1, 65535);

            await Client.UploadFileAsync(open.Id, "/srv/www/index.html", new MemoryStream("served from the guest"u8.ToArray()));
            await Client.ExecAsync(open.Id, new ExecRequest { Cmd = ["sh", "-c", "setsid httpd -p 8080 -h /srv/www >/dev/null 2>&1 &"] });
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            string? body = null;
            await Poll.UntilAsync(async () =>
            {
                try { body = await http.GetStringAsync($"http://127.0.0.1:{port.HostPort}/index.html"); return true; }
                catch (HttpRequestException) { return false; }
            }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(250));
            Assert.Equal("served from the guest", body);

            // The user-mode gateway (10.0.2.2) maps to the host's loopback: with internet or without, the
            // guest never reaches the daemon through it (ContainmentTests covers the rest).
            var daemonPort = f.Daemon.Url.Port;
            var probe = $"printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.0.2.2 {daemonPort}";
            var withNet = await Client.ExecAsync(open.Id, new ExecRequest { Cmd = ["sh", "-c", probe] });
            Assert.DoesNotContain("ok", withNet.Stdout);
            var without = await Client.ExecAsync(closed.Id, new ExecRequest { Cmd = ["sh", "-c", probe] });
            Assert.DoesNotContain("ok", without.Stdout);
        }
        finally
        {
            await Client.DeleteSandboxAsync(open.Id);
            await Client.DeleteSandboxAsync(closed.Id);
        }
    }

    [Fact]
    public async Task Logs_return_the_console()
    {
        var logs = await Client.GetLogsAsync(f.Primary.Id);
        Assert.Contains("BOUGH_INIT_DONE", logs);
        Assert.Contains("bough-agent", logs);
    }

    [Fact]
    public async Task Openapi_document_is_served()
    {
        var doc = await f.Daemon.Http.GetStringAsync("/openapi/v1.json");
        Assert.Contains("/v1/sandboxes", doc);
    }
}
