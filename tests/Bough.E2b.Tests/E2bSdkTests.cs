using System.Net;
using System.Text.Json;

namespace Bough.E2b.Tests;

/// <summary>The unmodified E2B SDK against a real daemon with real VMs.</summary>
[Collection("e2b")]
public sealed class E2bSdkTests(E2bFixture f)
{
    [Fact]
    public async Task Commands_run_with_output_exit_codes_envs_cwd_and_user()
    {
        var r = await f.Sdk.RunAsync("commands", new { id = f.Shared });
        Assert.Equal("from-create per-call\n", E2bFixture.Str(r, "env"));
        Assert.Equal("user\n/home/user\n", E2bFixture.Str(r, "who"));
        Assert.Equal("/tmp\n", E2bFixture.Str(r, "cwd"));
        Assert.Equal("root\n", E2bFixture.Str(r, "root"));
        Assert.Equal("out\n", r.GetProperty("split").GetProperty("stdout").GetString());
        Assert.Equal("err\n", r.GetProperty("split").GetProperty("stderr").GetString());
        Assert.Contains(r.GetProperty("streamed").EnumerateArray(), e => e[0].GetString() == "o" && e[1].GetString() == "out\n");
        Assert.Contains(r.GetProperty("streamed").EnumerateArray(), e => e[0].GetString() == "e" && e[1].GetString() == "err\n");
        Assert.Equal("CommandExitError", r.GetProperty("fail").GetProperty("error").GetString());
        Assert.Contains("exit status 3", r.GetProperty("fail").GetProperty("message").GetString());
        Assert.Equal("42\n", E2bFixture.Str(r, "py"));
        Assert.NotEqual("none", E2bFixture.Str(r, "slow")); // the 2 s deadline ended `sleep 30`
    }

    [Fact]
    public async Task Files_read_and_write_text_bytes_streams_blobs_and_several_at_once()
    {
        var r = await f.Sdk.RunAsync("files", new { id = f.Shared });
        Assert.Equal("/home/user/notes/hello.txt", r.GetProperty("written").GetProperty("path").GetString());
        Assert.Equal("hello e2b", E2bFixture.Str(r, "text"));
        Assert.Equal([0, 1, 2, 250, 255], r.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        Assert.Equal(["/tmp/m/a.txt", "/tmp/m/b.txt"], r.GetProperty("multi").EnumerateArray().Select(e => e.GetProperty("path").GetString()));
        Assert.Equal("A", E2bFixture.Str(r, "a"));
        Assert.Equal("B", E2bFixture.Str(r, "b"));
        Assert.Equal("user", E2bFixture.Str(r, "owner"));
        Assert.Equal("FileNotFoundError", E2bFixture.Str(r, "missing"));
        Assert.Equal("/root/r.txt", r.GetProperty("asRoot").GetProperty("path").GetString());

        var stream = r.GetProperty("stream");
        Assert.Equal("/tmp/stream.bin", E2bFixture.Str(stream, "path"));
        Assert.Equal(16 * 65_536, stream.GetProperty("length").GetInt32());
        Assert.True(stream.GetProperty("same").GetBoolean(), "the streamed upload reads back byte for byte: " + stream);
        Assert.True(stream.GetProperty("chunks").GetInt32() > 1, "the read came as a stream of chunks: " + stream);
        Assert.Equal("blob-data", E2bFixture.Str(r.GetProperty("blob"), "text"));
        Assert.Equal(9, r.GetProperty("blob").GetProperty("size").GetInt32());
    }

    [Fact]
    public async Task GetInfo_describes_the_sandbox_and_metrics_are_measured()
    {
        var r = await f.Sdk.RunAsync("info", new { id = f.Shared });
        var info = r.GetProperty("info");
        Assert.Equal(f.Shared, E2bFixture.Str(info, "sandboxId"));
        Assert.Equal("base", E2bFixture.Str(info, "templateId"));
        Assert.Equal("running", E2bFixture.Str(info, "state"));
        Assert.Equal("e2b", info.GetProperty("metadata").GetProperty("suite").GetString());
        Assert.False(info.GetProperty("metadata").TryGetProperty("e2b:envdAccessToken", out _), "reserved keys stay hidden");
        Assert.True(r.GetProperty("running").GetBoolean());

        var m = (await f.Sdk.RunAsync("metrics", new { id = f.Shared })).GetProperty("metrics")[0];
        Assert.True(m.GetProperty("memUsed").GetInt64() > 0);
        Assert.True(m.GetProperty("memTotal").GetInt64() >= m.GetProperty("memUsed").GetInt64());
        Assert.True(m.GetProperty("diskUsed").GetInt64() > 0);
    }

    [Fact]
    public async Task List_filters_by_metadata_and_state_and_pages()
    {
        var second = await f.CreateAsync(new { metadata = new { suite = "e2b", role = "second", odd = "k y&1" } });
        try
        {
            var bySuite = await f.Sdk.RunAsync("list", new { metadata = new { suite = "e2b" }, limit = 1 });
            var pages = bySuite.GetProperty("pages").EnumerateArray().ToList();
            Assert.True(pages.Count >= 2, bySuite.ToString());
            Assert.All(pages, p => Assert.True(p.GetArrayLength() <= 1));
            var ids = pages.SelectMany(p => p.EnumerateArray()).Select(s => E2bFixture.Str(s, "id")).ToList();
            Assert.Contains(f.Shared, ids);
            Assert.Contains(second, ids);

            var odd = await f.Sdk.RunAsync("list", new { metadata = new { odd = "k y&1" } });
            Assert.Equal([second], odd.GetProperty("pages").EnumerateArray().SelectMany(p => p.EnumerateArray()).Select(s => E2bFixture.Str(s, "id")));

            var paused = await f.Sdk.RunAsync("list", new { metadata = new { suite = "e2b" }, state = new[] { "paused" } });
            Assert.DoesNotContain(paused.GetProperty("pages").EnumerateArray().SelectMany(p => p.EnumerateArray()), s => E2bFixture.Str(s, "id") == second);
        }
        finally
        {
            await f.Sdk.RunAsync("kill", new { id = second });
        }
    }

    [Fact]
    public async Task Kill_is_true_then_false_and_the_sandbox_is_gone()
    {
        var id = await f.CreateAsync(new { metadata = new { suite = "kill" } });
        var r = await f.Sdk.RunAsync("kill", new { id });
        Assert.True(r.GetProperty("first").GetBoolean());
        Assert.False(r.GetProperty("second").GetBoolean());
        Assert.False(r.GetProperty("running").GetBoolean());
        Assert.Equal("SandboxNotFoundError", E2bFixture.Str(r, "info"));
    }

    [Fact]
    public async Task SetTimeout_ends_the_sandbox_when_it_expires()
    {
        var id = await f.CreateAsync(new { metadata = new { suite = "expire" } });
        var r = await f.Sdk.RunAsync("expire", new { id, timeoutMs = 3000, waitMs = 15000 });
        Assert.False(r.GetProperty("running").GetBoolean());
        Assert.Equal("SandboxNotFoundError", E2bFixture.Str(r, "info"));
    }

    [Fact]
    public async Task AutoPause_pauses_at_the_deadline_and_connect_resumes()
    {
        var r = await f.Sdk.RunAsync("autoPause", new { timeoutMs = 5000, waitMs = 25000 });
        Assert.Equal("paused", E2bFixture.Str(r, "state"));
        Assert.Equal("paused by its deadline", E2bFixture.Str(r, "kept"));
        Assert.Equal("SandboxNotFoundError", E2bFixture.Str(r, "lifecycle")); // killed at the end
    }

    [Fact]
    public async Task Pause_then_connect_resumes_with_files_and_processes_intact()
    {
        var id = await f.CreateAsync(new { metadata = new { suite = "pause" } });
        try
        {
            var r = await f.Sdk.RunAsync("pauseConnect", new { id });
            Assert.True(r.GetProperty("paused").GetBoolean());
            Assert.False(r.GetProperty("again").GetBoolean());
            Assert.Equal("paused", E2bFixture.Str(r, "state"));
            Assert.False(r.GetProperty("whilePaused").GetBoolean());
            Assert.True(r.GetProperty("running").GetBoolean());
            Assert.Equal("kept across pause", E2bFixture.Str(r, "kept"));
            Assert.Equal("running", E2bFixture.Str(r, "after"));

            // The background processes started before the pause are the same processes after it.
            var p = r.GetProperty("processes");
            var pids = p.GetProperty("pids").EnumerateArray().Select(e => e.GetInt32()).ToList();
            var listed = p.GetProperty("listed").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.All(pids, pid => Assert.Contains(pid, listed));
            var before = p.GetProperty("beforePause").GetInt32();
            var afterResume = p.GetProperty("afterResume").GetInt32();
            Assert.True(before >= 1, p.ToString());
            Assert.True(afterResume >= before, "the counter did not start over: " + p);
            Assert.True(p.GetProperty("counted").GetBoolean(), "the counter goes on counting after connect: " + p);
            Assert.Contains(p.GetProperty("seen").EnumerateArray(), n => n.GetInt32() > afterResume);
            Assert.True(p.GetProperty("readerSaw").GetBoolean(), "stdin sent after the pause reaches the reader: " + p);
            Assert.Equal("got after\neof\n", E2bFixture.Str(p, "readerStdout")); // Connect streams output from then on
            Assert.Equal(0, p.GetProperty("readerExit").GetInt32());
            Assert.True(p.GetProperty("counterKilled").GetBoolean());
        }
        finally
        {
            await f.Sdk.RunAsync("kill", new { id });
        }
    }

    [Fact]
    public async Task Fork_starts_a_copy_that_diverges()
    {
        var r = await f.Sdk.RunAsync("fork", new { id = f.Shared });
        Assert.NotEqual(f.Shared, E2bFixture.Str(r, "childId"));
        Assert.Equal("child", E2bFixture.Str(r, "child"));
        Assert.Equal("parent", E2bFixture.Str(r, "parent"));
        Assert.Equal("e2b", r.GetProperty("childMetadata").GetProperty("suite").GetString());
    }

    [Fact]
    public async Task CreateSnapshot_then_create_starts_from_it()
    {
        var name = "snap-" + Guid.NewGuid().ToString("N")[..6];
        var source = await f.CreateAsync(new { metadata = new { suite = "snapshot" } }); // the scenario kills it
        var r = await f.Sdk.RunAsync("snapshot", new { id = source, name });
        var snapshotId = r.GetProperty("snap").GetProperty("snapshotId").GetString();
        Assert.Equal([name], r.GetProperty("snap").GetProperty("names").EnumerateArray().Select(n => n.GetString()));
        Assert.Contains(snapshotId, r.GetProperty("listed").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal("in the snapshot", E2bFixture.Str(r, "content"));
        Assert.Equal(snapshotId, E2bFixture.Str(r, "templateId"));
        Assert.True(r.GetProperty("deleted").GetBoolean());
        Assert.False(r.GetProperty("deletedAgain").GetBoolean());
    }

    [Fact]
    public async Task Wrong_keys_and_tokens_are_refused()
    {
        var r = await f.Sdk.RunAsync("wrongKey");
        Assert.Equal("AuthenticationError", E2bFixture.Str(r, "list"));
        Assert.Equal("AuthenticationError", E2bFixture.Str(r, "create"));

        // envd: the sandbox's own access token, not the API key, and not another value.
        using var http = new HttpClient { BaseAddress = f.Daemon.Url };
        foreach (var token in new[] { null, "wrong", f.Daemon.Token })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/files?path=/etc/hostname");
            request.Headers.Add("E2b-Sandbox-Id", f.Shared);
            if (token is not null) request.Headers.Add("X-Access-Token", token);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        using var health = new HttpRequestMessage(HttpMethod.Get, "/health");
        health.Headers.Add("E2b-Sandbox-Id", "no-such-sandbox");
        using var gone = await http.SendAsync(health);
        Assert.Equal(HttpStatusCode.BadGateway, gone.StatusCode);
    }
}
