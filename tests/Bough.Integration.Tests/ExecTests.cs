using System.Diagnostics;
using System.Text;
using Bough.Contracts;

namespace Bough.Integration.Tests;

[Collection("daemon")]
public sealed class ExecTests(DaemonFixture f)
{
    private Task<ExecResult> Run(params string[] cmd) =>
        f.Daemon.Client.ExecAsync(f.Primary.Id, new ExecRequest { Cmd = [.. cmd] });

    [Fact]
    public async Task Output_and_exit_code_come_back()
    {
        var r = await Run("sh", "-c", "echo hello; echo oops >&2; exit 3");
        Assert.Equal("hello\n", r.Stdout);
        Assert.Equal("oops\n", r.Stderr);
        Assert.Equal(3, r.ExitCode);
        Assert.Null(r.Signal);
        Assert.False(r.TimedOut);
    }

    [Fact]
    public async Task A_signal_is_reported()
    {
        var r = await Run("sh", "-c", "kill -9 $$");
        Assert.Equal(9, r.Signal);
        Assert.Equal(137, r.ExitCode);
    }

    [Fact]
    public async Task Missing_command_exits_127()
    {
        var r = await Run("/no/such/program");
        Assert.Equal(127, r.ExitCode);
    }

    [Fact]
    public async Task Timeout_kills_the_whole_process_group()
    {
        var r = await f.Daemon.Client.ExecAsync(f.Primary.Id, new ExecRequest
        {
            Cmd = ["sh", "-c", "sleep 4242 & sleep 4243; echo never"],
            TimeoutSeconds = 2,
        });
        Assert.True(r.TimedOut);
        Assert.DoesNotContain("never", r.Stdout);
        // The backgrounded grandchild was in the same group: it must be gone too.
        var ps = await Run("sh", "-c", "sleep 0.3; ps -o args | grep 'sleep 424[23]' || true");
        Assert.Equal("", ps.Stdout.Trim());
    }

    [Fact]
    public async Task Env_cwd_and_stdin_apply()
    {
        var r = await f.Daemon.Client.ExecAsync(f.Primary.Id, new ExecRequest
        {
            Cmd = ["sh", "-c", "echo \"$FOO|$SANDBOX_LEVEL|$(pwd)\"; cat"],
            Env = new() { ["FOO"] = "bar baz" },
            Cwd = "/tmp",
            Stdin = Convert.ToBase64String("from stdin\n"u8.ToArray()),
        });
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("bar baz|from-create|/tmp\nfrom stdin\n", r.Stdout);
    }

    [Fact]
    public async Task Default_cwd_is_roots_home_and_hostname_is_the_id()
    {
        var r = await Run("sh", "-c", "pwd; hostname; cat /etc/hostname");
        Assert.Equal($"/root\n{f.Primary.Id}\n{f.Primary.Id}\n", r.Stdout);
    }

    [Fact]
    public async Task Ten_MiB_of_output_arrive_intact()
    {
        var r = await Run("sh", "-c", "head -c 10485760 /dev/zero | tr '\\0' 'x'");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(10 * 1024 * 1024, r.Stdout.Length);
        Assert.True(r.Stdout.All(c => c == 'x'));
    }

    [Fact]
    public async Task Twenty_concurrent_execs_each_get_their_own_output()
    {
        var tasks = Enumerable.Range(0, 20).Select(i =>
            Run("sh", "-c", $"sleep 1; echo job-{i}; echo err-{i} >&2; exit {i % 7}")).ToArray();
        var results = await Task.WhenAll(tasks);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal($"job-{i}\n", results[i].Stdout);
            Assert.Equal($"err-{i}\n", results[i].Stderr);
            Assert.Equal(i % 7, results[i].ExitCode);
        }
    }

    [Fact]
    public async Task Streaming_delivers_output_before_the_command_ends()
    {
        var first = TimeSpan.Zero;
        var sw = Stopwatch.StartNew();
        var stdout = new StringBuilder();
        ExecEvent? exit = null;
        await foreach (var e in f.Daemon.Client.ExecStreamAsync(f.Primary.Id,
                           new ExecRequest { Cmd = ["sh", "-c", "echo first; sleep 2; echo second; exit 5"] }))
        {
            if (e.Type == "stdout")
            {
                if (first == TimeSpan.Zero) first = sw.Elapsed;
                stdout.Append(Encoding.UTF8.GetString(Convert.FromBase64String(e.Data!)));
            }
            else if (e.Type == "exit") exit = e;
        }
        var total = sw.Elapsed;
        Assert.Equal("first\nsecond\n", stdout.ToString());
        Assert.NotNull(exit);
        Assert.Equal(5, exit!.ExitCode);
        // The first line must have been delivered while the command was still sleeping.
        Assert.True(total - first > TimeSpan.FromSeconds(1), $"first output at {first}, end at {total}");
    }

    [Fact]
    public async Task A_process_started_in_its_own_session_outlives_the_exec()
    {
        var sw = Stopwatch.StartNew();
        var r = await Run("sh", "-c", "setsid sleep 7777 & echo started");
        Assert.Equal("started\n", r.Stdout);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30));
        var ps = await Run("sh", "-c", "ps -o args | grep 'sleep 777[7]'");
        Assert.Contains("sleep 7777", ps.Stdout);
        await Run("sh", "-c", "pkill -f 'sleep 7777' || true");
    }
}
