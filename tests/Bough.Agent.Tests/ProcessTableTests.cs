using System.Diagnostics;
using System.Text;
using Bough.AgentClient;
using static Bough.Agent.Tests.ProcessTestExtensions;

namespace Bough.Agent.Tests;

/// <summary>
/// The agent's process table against the real agent binary and real processes: background starts,
/// stdin, attach and reconnect with buffered output, signals, deadlines, lifetimes, list, and
/// processes outliving the connection that started them. Liveness is checked through /proc, not
/// through what the agent says.
/// </summary>
public sealed class ProcessTableTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private AgentConnection C => fixture.Connection;

    [Fact]
    public async Task Background_process_takes_stdin_and_ends_when_stdin_is_closed()
    {
        int pid = await C.Start(Sh("while read line; do echo \"got $line\"; done; echo eof", stdin: true));
        await using var reader = C.Attach(pid);
        await C.Input(pid, "one\n");
        await C.Input(pid, "two\n");
        Assert.True(await reader.ReadUntilTextAsync("got two\n"), reader.Text);
        Assert.Equal("got one\ngot two\n", reader.Text);
        await Task.Delay(200);
        Assert.True(HostProcess.IsAlive(pid), "the process should still wait for input");

        await C.CloseProcessStdinAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10));
        var exit = await reader.ReadToExitAsync();
        Assert.Equal(0, exit.ExitCode);
        Assert.EndsWith("eof\n", reader.Text);
        var e = await Assert.ThrowsAsync<AgentException>(() => C.Input(pid, "late\n"));
        Assert.Equal("not_found", e.Code);
    }

    [Fact]
    public async Task Reconnect_sees_buffered_output_and_then_live_output()
    {
        using var dir = new TempDir("proc-buffer");
        string marker = dir.Combine("written");
        int pid = await C.Start(Sh($"echo first; echo oops >&2; touch {marker}; read x; echo \"second $x\"", stdin: true));
        // Nobody is attached while it writes; the agent buffers it.
        Assert.True(await Poll.UntilAsync(() => File.Exists(marker), TimeSpan.FromSeconds(20)));
        await Task.Delay(100);

        await using (var again = C.Attach(pid))
        {
            Assert.True(await again.ReadUntilTextAsync("first\n"));
            Assert.Equal(pid, again.Started!.Pid);
            Assert.Equal(0, again.Started.SkippedBytes);
        }
        await using var live = C.Attach(pid);
        Assert.True(await live.ReadUntilTextAsync("first\n"));
        await C.Input(pid, "live\n");
        var exit = await live.ReadToExitAsync();
        Assert.Equal("first\nsecond live\n", live.Text);
        Assert.Equal("oops\n", live.Stderr);
        Assert.Equal(0, exit.ExitCode);

        // Without replay only new output arrives: for an exited process that is nothing but the exit.
        await using var fresh = C.Attach(pid, new AttachOptions { Replay = false });
        Assert.Equal(0, (await fresh.ReadToExitAsync()).ExitCode);
        Assert.Equal("", fresh.Text);
    }

    [Fact]
    public async Task Signals_reach_the_process_group_and_are_reported()
    {
        int pid = await C.Start(Sh("sleep 300 & echo $!; wait"));
        await using var reader = C.Attach(pid);
        Assert.True(await reader.ReadUntilTextAsync("\n"));
        int child = int.Parse(reader.Text.Trim());
        Assert.True(await C.SignalProcessAsync(ProcessSelector.ByPid(pid), 15, group: true, ExecHelpers.Timeout(10)));
        var exit = await reader.ReadToExitAsync();
        Assert.Equal(15, exit.Signal);
        Assert.Equal(143, exit.ExitCode);
        Assert.True(await HostProcess.WaitExitAsync(child, TimeSpan.FromSeconds(5)), "the group's other member survived");
        Assert.False(await C.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10)), "an exited process cannot be signalled");

        // Any signal number; a trap sees it.
        int trapper = await C.Start(Sh("trap 'echo got usr1; exit 7' USR1; echo ready; while :; do sleep 0.1; done"));
        await using var t = C.Attach(trapper);
        Assert.True(await t.ReadUntilTextAsync("ready\n"));
        Assert.True(await C.SignalProcessAsync(ProcessSelector.ByPid(trapper), 10, group: false, ExecHelpers.Timeout(10)));
        Assert.Equal(7, (await t.ReadToExitAsync()).ExitCode);
        Assert.Contains("got usr1", t.Text);
    }

    [Fact]
    public async Task A_stream_deadline_kills_the_process_but_detaching_first_does_not()
    {
        var sw = Stopwatch.StartNew();
        await using (var reader = C.StartAttached(Sh("sleep 300"), new AttachOptions { Deadline = TimeSpan.FromSeconds(1) }))
        {
            var exit = await reader.ReadToExitAsync();
            Assert.True(exit.TimedOut);
            Assert.Equal(9, exit.Signal);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
            Assert.False(HostProcess.IsAlive(reader.Started!.Pid));
        }

        int pid;
        await using (var reader = C.StartAttached(Sh("sleep 300"), new AttachOptions { Deadline = TimeSpan.FromSeconds(1) }))
        {
            Assert.True(await reader.ReadUntilAsync(r => r.Started != null));
            pid = reader.Started!.Pid;
        } // detached well before the deadline
        await Task.Delay(2000);
        Assert.True(HostProcess.IsAlive(pid), "a detached stream's deadline killed the process");
        Assert.True(await C.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10)));
        Assert.True(await HostProcess.WaitExitAsync(pid, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_lifetime_timeout_kills_a_detached_process()
    {
        int pid = await C.Start(new ProcessSpec { Argv = ["sleep", "300"], Timeout = TimeSpan.FromSeconds(1) });
        Assert.True(await HostProcess.WaitExitAsync(pid, TimeSpan.FromSeconds(10)), "lifetime did not kill the process");
        await using var reader = C.Attach(pid);
        var exit = await reader.ReadToExitAsync();
        Assert.True(exit.TimedOut);
        Assert.Equal(9, exit.Signal);
    }

    [Fact]
    public async Task Keepalives_flow_while_a_stream_is_idle()
    {
        int pid = await C.Start(Sh("sleep 300"));
        try
        {
            await using var reader = C.Attach(pid, new AttachOptions { KeepaliveInterval = TimeSpan.FromMilliseconds(200) });
            var sw = Stopwatch.StartNew();
            Assert.True(await reader.ReadUntilAsync(r => r.Keepalives >= 3));
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(500), $"3 keepalives after {sw.Elapsed}");
        }
        finally
        {
            await C.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10));
        }
    }

    [Fact]
    public async Task List_shows_what_each_process_was_started_with()
    {
        string tag = $"lister-{Guid.NewGuid():n}";
        int pid = await C.StartProcessAsync(new ProcessSpec
        {
            Argv = ["sleep", "300"], Tag = tag, Cwd = "/tmp", Env = new Dictionary<string, string> { ["K"] = "v" },
        }, ExecHelpers.Timeout(10));
        var listed = (await C.ListProcessesAsync(false, ExecHelpers.Timeout(10))).Single(p => p.Pid == pid);
        Assert.Equal(tag, listed.Tag);
        Assert.Equal(["sleep", "300"], listed.Argv);
        Assert.Equal("v", listed.Env["K"]);
        Assert.Equal("/tmp", listed.Cwd);
        Assert.Null(listed.Exit);
        Assert.False(listed.StdinOpen);

        // The tag selects the process and is unique among running ones.
        var dup = await Assert.ThrowsAsync<AgentException>(() => C.StartProcessAsync(new ProcessSpec { Argv = ["true"], Tag = tag }, ExecHelpers.Timeout(10)));
        Assert.Equal("already_exists", dup.Code);
        Assert.True(await C.KillProcessAsync(ProcessSelector.ByTag(tag), ExecHelpers.Timeout(10)));
        Assert.True(await HostProcess.WaitExitAsync(pid, TimeSpan.FromSeconds(5)));

        Assert.True(await Poll.UntilAsync(async () => (await C.ListProcessesAsync(false, ExecHelpers.Timeout(10))).All(p => p.Pid != pid),
            TimeSpan.FromSeconds(5)), "an exited process is still listed as running");
        var exited = (await C.ListProcessesAsync(true, ExecHelpers.Timeout(10))).Single(p => p.Pid == pid);
        Assert.Equal(9, exited.Exit!.Signal);
    }

    [Fact]
    public async Task A_background_process_outlives_the_connection_that_started_it()
    {
        int pid;
        await using (var first = await fixture.Agent.ConnectAsync())
        {
            pid = await first.StartProcessAsync(Sh("echo before; sleep 1; echo after; sleep 300"), ExecHelpers.Timeout(10));
            await using var attached = new ProcessReader(first.AttachProcessAsync(ProcessSelector.ByPid(pid), null, CancellationToken.None), TimeSpan.FromSeconds(10));
            Assert.True(await attached.ReadUntilTextAsync("before"));
        } // the connection closes while attached
        // A new session (new HELLO) drops the old one's streams, not the table's processes.
        await using var second = await fixture.Agent.ConnectAsync();
        await Task.Delay(1500);
        Assert.True(HostProcess.IsAlive(pid), "the process died with its connection");
        Assert.Contains(await second.ListProcessesAsync(false, ExecHelpers.Timeout(10)), p => p.Pid == pid);
        await using var reader = new ProcessReader(second.AttachProcessAsync(ProcessSelector.ByPid(pid), null, CancellationToken.None), TimeSpan.FromSeconds(10));
        Assert.True(await reader.ReadUntilTextAsync("after\n"));
        Assert.Equal("before\nafter\n", reader.Text);
        Assert.True(await second.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10)));
        Assert.Equal(9, (await reader.ReadToExitAsync()).Signal);
    }

    [Fact]
    public async Task Unknown_processes_bad_starts_and_missing_stdin_are_clear_errors()
    {
        var attach = await Assert.ThrowsAsync<AgentException>(async () =>
        {
            await using var r = C.Attach(999_999_999);
            await r.ReadToExitAsync();
        });
        Assert.Equal("not_found", attach.Code);
        Assert.False(await C.KillProcessAsync(ProcessSelector.ByTag("no-such-tag"), ExecHelpers.Timeout(10)));
        var notFound = await Assert.ThrowsAsync<AgentException>(() => C.Start(new ProcessSpec { Argv = ["no-such-command-xyz"] }));
        Assert.Equal("file_not_found", notFound.Code);
        var badCwd = await Assert.ThrowsAsync<AgentException>(() => C.Start(new ProcessSpec { Argv = ["true"], Cwd = "/no/such/dir" }));
        Assert.Equal("file_not_found", badCwd.Code);

        int pid = await C.Start(Sh("sleep 300"));
        var noStdin = await Assert.ThrowsAsync<AgentException>(() => C.Input(pid, "x"));
        Assert.Equal("bad_request", noStdin.Code);
        await C.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10));
    }

    [Fact]
    public async Task A_slow_attached_reader_loses_nothing_and_holds_the_process_back()
    {
        var expected = new StringBuilder();
        for (int i = 1; i <= 200_000; i++) expected.Append(i).Append('\n');
        await using (var reader = C.StartAttached(Sh("seq 1 200000"), timeoutSeconds: 60))
        {
            await reader.ReadUntilAsync(r => r.Text.Length > 0);
            await Task.Delay(1000); // the agent's buffer and the window fill meanwhile
            Assert.Equal(0, (await reader.ReadToExitAsync()).ExitCode);
            Assert.Equal(expected.ToString(), reader.Text);
        }

        // A stalled reader stops the agent from reading: the process blocks on its pipe instead of
        // its output piling up in the agent.
        long rssBefore = fixture.Agent.RssBytes();
        const long total = 64L * 1024 * 1024;
        await using var stalled = new ProcessReader(C.StartProcessAttachedAsync(Sh($"head -c {total} /dev/zero"), null, CancellationToken.None),
            TimeSpan.FromSeconds(120), keepText: false);
        Assert.True(await stalled.ReadUntilAsync(r => r.OutputBytes > 0));
        await Task.Delay(1500);
        Assert.True(HostProcess.IsAlive(stalled.Started!.Pid), "the process ran ahead of its stalled reader");
        Assert.True(fixture.Agent.RssBytes() - rssBefore < 32L * 1024 * 1024, "the agent buffered a stalled reader's output");
        Assert.Equal(0, (await stalled.ReadToExitAsync()).ExitCode);
        Assert.Equal(total, stalled.OutputBytes);
    }

    [Fact]
    public async Task Output_nobody_reads_is_kept_only_as_a_bounded_tail()
    {
        long rssBefore = fixture.Agent.RssBytes();
        int pid = await C.Start(Sh("head -c 20971520 /dev/zero"));
        Assert.True(await HostProcess.WaitExitAsync(pid, TimeSpan.FromSeconds(30)), "unattached output blocked the process");
        await using var late = C.Attach(pid);
        await late.ReadToExitAsync();
        Assert.True(late.OutputBytes <= 64 * 1024, $"replayed {late.OutputBytes} bytes of an exited process");
        Assert.True(late.OutputBytes > 0);
        Assert.Equal(20971520, late.Started!.SkippedBytes + late.OutputBytes);
        Assert.True(fixture.Agent.RssBytes() - rssBefore < 48L * 1024 * 1024, "agent memory grew with unattached output");
    }

    [Fact]
    public async Task A_process_runs_as_the_requested_user()
    {
        await using var reader = C.StartAttached(new ProcessSpec { Argv = ["id", "-u"], User = "65534" });
        Assert.Equal(0, (await reader.ReadToExitAsync()).ExitCode);
        Assert.Equal("65534\n", reader.Text);

        // On a terminal, the user owns it.
        await using var pty = C.StartAttached(new ProcessSpec { Argv = ["sh", "-c", "stat -c %u $(tty)"], User = "65534", Pty = new PtySize(80, 24) });
        Assert.Equal(0, (await pty.ReadToExitAsync()).ExitCode);
        Assert.Equal("65534\r\n", pty.Text);
    }
}
