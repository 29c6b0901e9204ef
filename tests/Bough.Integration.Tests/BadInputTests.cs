using System.Net;
using Bough.Client;
using Bough.Contracts;

namespace Bough.Integration.Tests;

/// <summary>Bad requests get a clear 4xx problem, and nothing else is disturbed.</summary>
[Collection("daemon")]
public sealed class BadInputTests(DaemonFixture f)
{
    private HttpClient Http => f.Daemon.Http;

    private static async Task<Problem> Expect(HttpResponseMessage r, HttpStatusCode status, string code)
    {
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(status == r.StatusCode, $"expected {(int)status}, got {(int)r.StatusCode}: {body}");
        var p = await Problems.ReadAsync(r);
        Assert.Equal(code, p.Code);
        return p;
    }

    [Fact]
    public async Task Malformed_json_is_400()
    {
        using var r = await Problems.PostJsonTextAsync(Http, "/v1/sandboxes", "{\"vcpus\": 1,");
        await Expect(r, HttpStatusCode.BadRequest, ErrorCodes.InvalidJson);
    }

    [Fact]
    public async Task Unknown_field_is_400_and_named()
    {
        using var r = await Problems.PostJsonTextAsync(Http, "/v1/sandboxes", "{\"vcpu\": 1}");
        var p = await Expect(r, HttpStatusCode.BadRequest, ErrorCodes.InvalidJson);
        Assert.Contains("vcpu", p.Detail);
    }

    [Fact]
    public async Task Wrong_type_is_400()
    {
        using var r = await Problems.PostJsonTextAsync(Http, "/v1/sandboxes", "{\"memoryMiB\": \"lots\"}");
        var p = await Expect(r, HttpStatusCode.BadRequest, ErrorCodes.InvalidJson);
        Assert.Contains("memoryMiB", p.Detail, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("{\"vcpus\": -1}", "vcpus")]
    [InlineData("{\"vcpus\": 100000}", "vcpus")]
    [InlineData("{\"memoryMiB\": -5}", "memoryMiB")]
    [InlineData("{\"memoryMiB\": 99999999}", "memoryMiB")]
    [InlineData("{\"ports\": [0]}", "ports")]
    [InlineData("{\"ports\": [70000]}", "ports")]
    [InlineData("{\"env\": {\"A=B\": \"x\"}}", "env")]
    public async Task Out_of_range_sizes_are_400_and_say_what_is_wrong(string body, string field)
    {
        using var r = await Problems.PostJsonTextAsync(Http, "/v1/sandboxes", body);
        var p = await Expect(r, HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest);
        Assert.Contains(field, p.Detail);
    }

    [Fact]
    public async Task Unknown_image_is_404()
    {
        using var r = await Problems.PostJsonTextAsync(Http, "/v1/sandboxes", "{\"image\": \"no-such-image\"}");
        await Expect(r, HttpStatusCode.NotFound, ErrorCodes.ImageNotFound);
    }

    [Theory]
    [InlineData("GET", "/v1/sandboxes/sb-doesnotexist")]
    [InlineData("DELETE", "/v1/sandboxes/sb-doesnotexist")]
    [InlineData("GET", "/v1/sandboxes/../../etc/passwd")]
    [InlineData("GET", "/v1/sandboxes/sb-doesnotexist/logs")]
    [InlineData("GET", "/v1/sandboxes/sb-doesnotexist/files?path=/etc/passwd")]
    [InlineData("GET", "/v1/sandboxes/sb-doesnotexist/files/list?path=/")]
    public async Task Unknown_ids_are_404(string method, string url)
    {
        using var r = await Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), url));
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        await Problems.ReadAsync(r);
    }

    [Fact]
    public async Task Exec_on_unknown_id_is_404()
    {
        using var r = await Problems.PostJsonTextAsync(Http, "/v1/sandboxes/sb-doesnotexist/exec", "{\"cmd\":[\"true\"]}");
        await Expect(r, HttpStatusCode.NotFound, ErrorCodes.SandboxNotFound);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"cmd\": []}")]
    [InlineData("{\"cmd\": [\"true\"], \"timeoutSeconds\": -1}")]
    [InlineData("{\"cmd\": [\"true\"], \"cwd\": \"relative\"}")]
    public async Task Bad_exec_requests_are_400(string body)
    {
        using var r = await Problems.PostJsonTextAsync(Http, $"/v1/sandboxes/{f.Primary.Id}/exec", body);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        await Problems.ReadAsync(r);
    }

    [Fact]
    public async Task Bad_base64_stdin_is_400()
    {
        using var r = await Problems.PostJsonTextAsync(Http, $"/v1/sandboxes/{f.Primary.Id}/exec",
            "{\"cmd\": [\"cat\"], \"stdin\": \"***not base64***\"}");
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        await Problems.ReadAsync(r);
    }

    [Fact]
    public async Task Missing_path_is_400()
    {
        using var r = await Http.GetAsync($"/v1/sandboxes/{f.Primary.Id}/files");
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        await Problems.ReadAsync(r);
    }

    [Fact]
    public async Task Unknown_route_is_a_404_problem()
    {
        using var r = await Http.GetAsync("/v1/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        await Problems.ReadAsync(r);
    }

    [Fact]
    public async Task A_guest_that_sends_garbage_loses_its_channel_and_nothing_else()
    {
        var victim = await f.Daemon.Client.CreateSandboxAsync(new CreateSandboxRequest());
        try
        {
            // Inside the guest: stop the agent from being respawned, kill it, then write random
            // bytes into the agent port, which the host reads as frames.
            const string script = """
                mv /usr/local/bin/bough-agent /usr/local/bin/bough-agent.off
                sleep 3
                kill -9 $(pidof bough-agent) 2>/dev/null
                sleep 1
                for d in /sys/class/virtio-ports/*; do
                  if [ "$(cat $d/name)" = org.bough.agent ]; then port=/dev/$(basename $d); fi
                done
                head -c 262144 /dev/urandom > $port
                """;
            try
            {
                await f.Daemon.Client.ExecAsync(victim.Id, new ExecRequest
                {
                    Cmd = ["sh", "-c", $"setsid sh -c '{script.Replace("'", "'\\''")}' >/dev/null 2>&1 &"],
                });
            }
            catch (BoughApiException ex) when (ex.Code == ErrorCodes.AgentUnavailable)
            {
                // On a slow machine the agent can die before this exec's answer got out.
            }
            await Task.Delay(TimeSpan.FromSeconds(6));

            using var r = await Problems.PostJsonTextAsync(Http, $"/v1/sandboxes/{victim.Id}/exec", "{\"cmd\":[\"true\"]}");
            Assert.True((int)r.StatusCode is 503 or 409, $"got {(int)r.StatusCode}");
            await Problems.ReadAsync(r);

            // The daemon and every other sandbox carry on.
            using var health = await Http.GetAsync("/healthz");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            var ok = await f.Daemon.Client.ExecAsync(f.Primary.Id, new ExecRequest { Cmd = ["echo", "still here"] });
            Assert.Equal("still here\n", ok.Stdout);
        }
        finally
        {
            await f.Daemon.Client.DeleteSandboxAsync(victim.Id);
        }
    }
}
