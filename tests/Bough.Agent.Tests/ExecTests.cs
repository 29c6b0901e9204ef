using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Bough.AgentClient;

namespace Bough.Agent.Tests;

public sealed class ExecTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private AgentConnection C => fixture.Connection;

    [Fact]
    public async Task Stdout_stderr_and_exit_code()
    {
        var (exit, stdout, stderr) = await C.Run("sh", "-c", "echo out; echo err >&2; exit 3");
        Assert.Equal("out\n", stdout.Text());
        Assert.Equal("err\n", stderr.Text());
        Assert.Equal(3, exit.ExitCode);
        Assert.Null(exit.Signal);
        Assert.False(exit.TimedOut);
    }

    [Fact]
    public async Task Killed_by_signal_reports_signal_and_128_plus_signal()
    {
        var (exit, _, _) = await C.Run("sh", "-c", "kill -9 $$");
        Assert.Equal(9, exit.Signal);
        Assert.Equal(137, exit.ExitCode);
    }

    [Fact]
    public async Task Sigpipe_has_default_disposition_in_children()
    {
        // The .NET runtime ignores SIGPIPE; the agent must reset it or `yes | head` never ends.
        var (exit, stdout, _) = await C.Run("sh", "-c", "yes | head -n 3");
        Assert.Equal(0, exit.ExitCode);
        Assert.Equal("y\ny\ny\n", stdout.Text());
    }

    [Fact]
    public async Task Timeout_kills_the_whole_process_group()
    {
        var sw = Stopwatch.StartNew();
        var (exit, stdout, _) = await C.RunToCompletionAsync(new ExecSpec
        {
            Argv = ["sh", "-c", "sleep 300 & echo $!; wait"],
            Timeout = TimeSpan.FromSeconds(1),
        }, ExecHelpers.Timeout(30));
        Assert.True(exit.TimedOut);
        Assert.Equal(9, exit.Signal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        int grandchild = int.Parse(stdout.Text().Trim());
        Assert.True(await HostProcess.WaitExitAsync(grandchild, TimeSpan.FromSeconds(5)), "grandchild sleep survived the timeout");
    }

    [Fact]
    public async Task Env_defaults_and_overrides()
    {
        var (_, stdout, _) = await C.RunToCompletionAsync(new ExecSpec
        {
            Argv = ["sh", "-c", "echo $FOO:$HOME:$PATH"],
            Env = new Dictionary<string, string> { ["FOO"] = "bar baz" },
        }, ExecHelpers.Timeout(30));
        Assert.Equal("bar baz:/root:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", stdout.Text());
    }

    [Fact]
    public async Task Cwd_is_used_and_missing_cwd_is_a_clear_error()
    {
        var (_, stdout, _) = await C.RunToCompletionAsync(new ExecSpec { Argv = ["pwd"], Cwd = "/tmp" }, ExecHelpers.Timeout(30));
        Assert.Equal("/tmp\n", stdout.Text());
        var (_, home, _) = await C.Run("pwd");
        Assert.Equal("/root\n", home.Text());
        var e = await Assert.ThrowsAsync<AgentException>(() =>
            C.RunToCompletionAsync(new ExecSpec { Argv = ["pwd"], Cwd = "/does/not/exist" }, ExecHelpers.Timeout(30)));
        Assert.Equal("file_not_found", e.Code);
        Assert.Contains("/does/not/exist", e.Message);
    }

    [Fact]
    public async Task Stdin_bytes_and_large_stdin_stream()
    {
        var (_, echoed, _) = await C.RunToCompletionAsync(new ExecSpec { Argv = ["cat"], StdinBytes = "hello\n"u8.ToArray() }, ExecHelpers.Timeout(30));
        Assert.Equal("hello\n", echoed.Text());

        var data = RandomNumberGenerator.GetBytes(5 * 1024 * 1024);
        using var input = new MemoryStream(data);
        var (exit, stdout, _) = await C.RunToCompletionAsync(new ExecSpec { Argv = ["sha256sum"], Stdin = input }, ExecHelpers.Timeout(60));
        Assert.Equal(0, exit.ExitCode);
        Assert.StartsWith(Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant(), stdout.Text());
    }

    [Fact]
    public async Task No_stdin_means_dev_null()
    {
        var (exit, stdout, _) = await C.Run("cat");
        Assert.Equal(0, exit.ExitCode);
        Assert.Empty(stdout);
    }

    [Fact]
    public async Task Ten_MiB_of_output()
    {
        long total = 0;
        await foreach (var e in C.ExecAsync(new ExecSpec { Argv = ["head", "-c", "10485760", "/dev/urandom"] }, ExecHelpers.Timeout(60)))
        {
            if (e is ExecEvent.Stdout o) total += o.Data.Length;
            if (e is ExecEvent.Exit x) Assert.Equal(0, x.ExitCode);
        }
        Assert.Equal(10L * 1024 * 1024, total);
    }

    [Fact]
    public async Task Twenty_concurrent_execs()
    {
        var sw = Stopwatch.StartNew();
        var runs = Enumerable.Range(0, 20).Select(i => C.Run("sh", "-c", "sleep 1; echo $0", $"run{i}")).ToArray();
        var results = await Task.WhenAll(runs);
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(0, results[i].Exit.ExitCode);
            Assert.Equal($"run{i}\n", results[i].Stdout.Text());
        }
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"20 concurrent 1 s execs took {sw.Elapsed}");
    }

    [Fact]
    public async Task Setsid_background_process_survives_and_exec_returns_promptly()
    {
        var sw = Stopwatch.StartNew();
        // The background sleep keeps stdout open; exec must still return when sh exits.
        var (exit, stdout, _) = await C.Run("sh", "-c", "setsid sleep 100 & echo $!");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"exec took {sw.Elapsed}");
        Assert.Equal(0, exit.ExitCode);
        int pid = int.Parse(stdout.Text().Trim());
        try
        {
            await Task.Delay(300);
            Assert.True(HostProcess.IsAlive(pid), "setsid background process was killed");
        }
        finally
        {
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { }
        }
    }

    [Fact]
    public async Task Detached_daemon_with_redirected_output()
    {
        var sw = Stopwatch.StartNew();
        var (exit, _, _) = await C.Run("sh", "-c", "setsid sleep 7 >/dev/null 2>&1 &");
        Assert.Equal(0, exit.ExitCode);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Command_not_found_is_127_with_message()
    {
        var (exit, _, stderr) = await C.Run("definitely-not-a-command-xyz");
        Assert.Equal(127, exit.ExitCode);
        Assert.Contains("command not found", stderr.Text());
    }

    [Fact]
    public async Task Cancelling_kills_the_process_group()
    {
        using var cts = new CancellationTokenSource();
        int pid = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in C.ExecAsync(new ExecSpec { Argv = ["sh", "-c", "sleep 300 & echo $!; wait"] }, cts.Token))
            {
                if (e is ExecEvent.Stdout o) { pid = int.Parse(Encoding.UTF8.GetString(o.Data).Trim()); cts.Cancel(); }
            }
        });
        Assert.NotEqual(0, pid);
        Assert.True(await HostProcess.WaitExitAsync(pid, TimeSpan.FromSeconds(5)), "background sleep survived cancellation");
        // The connection is still usable.
        Assert.Equal(0, (await C.Run("true")).Exit.ExitCode);
    }

    [Fact]
    public async Task Slow_consumer_does_not_grow_memory_or_block_other_streams()
    {
        long rssBefore = fixture.Agent.RssBytes();
        long maxBuffered = 0;
        long received = 0;
        var sw = Stopwatch.StartNew();
        await using (var e = C.ExecAsync(new ExecSpec { Argv = ["cat", "/dev/zero"] }, ExecHelpers.Timeout(60)).GetAsyncEnumerator())
        {
            while (sw.Elapsed < TimeSpan.FromSeconds(3) && await e.MoveNextAsync())
            {
                if (e.Current is ExecEvent.Stdout o) received += o.Data.Length;
                maxBuffered = Math.Max(maxBuffered, C.BufferedBytes);
                await Task.Delay(20);
            }
            // Meanwhile another exec on the same channel is not blocked by the stalled stream.
            var other = Stopwatch.StartNew();
            var (exit, stdout, _) = await C.Run("echo", "still-responsive");
            Assert.Equal("still-responsive\n", stdout.Text());
            Assert.True(other.Elapsed < TimeSpan.FromSeconds(5));
            maxBuffered = Math.Max(maxBuffered, C.BufferedBytes);
        }
        long rssAfter = fixture.Agent.RssBytes();
        Assert.True(received > 0);
        Assert.True(maxBuffered <= 256 * 1024 + 64 * 1024, $"client buffered {maxBuffered} bytes");
        Assert.True(rssAfter - rssBefore < 64L * 1024 * 1024, $"agent RSS grew from {rssBefore} to {rssAfter}");
    }
}
