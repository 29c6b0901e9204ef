using Bough.AgentClient;

namespace Bough.Agent.Tests;

/// <summary>Processes on real pseudo-terminals: echo, a controlling terminal, resize seen by the process, reconnect.</summary>
public sealed class PtyTests(AgentFixture fixture) : IClassFixture<AgentFixture>
{
    private AgentConnection C => fixture.Connection;

    private static ProcessSpec OnPty(string script, int cols = 80, int rows = 24) =>
        new() { Argv = ["sh", "-c", script], Pty = new PtySize(cols, rows), Env = new Dictionary<string, string> { ["TERM"] = "xterm" } };

    [Fact]
    public async Task The_terminal_echoes_input_and_is_the_controlling_terminal()
    {
        await using var reader = C.StartAttached(OnPty("tty; test -t 0 && test -t 1 && echo is-a-tty; exec cat"));
        Assert.True(await reader.ReadUntilTextAsync("is-a-tty"), reader.Text);
        Assert.Matches("^/dev/pts/[0-9]+\r\n", reader.Text);
        Assert.True(reader.Started!.Pty);
        int pid = reader.Started.Pid;

        await C.Input(pid, "hello\n");
        // Once from the terminal's echo, once from cat; the terminal turns \n into \r\n.
        Assert.True(await reader.ReadUntilAsync(r => r.Text.Split("hello\r\n").Length - 1 >= 2), reader.Text);
        await C.Input(pid, "\x04"); // ^D: end of input for cat
        Assert.Equal(0, (await reader.ReadToExitAsync()).ExitCode);
    }

    [Fact]
    public async Task Resize_is_visible_to_the_process()
    {
        await using var reader = C.StartAttached(OnPty("trap 'echo winch' WINCH; stty size; while :; do read line; stty size; done", cols: 80, rows: 24));
        Assert.True(await reader.ReadUntilTextAsync("24 80\r\n"), reader.Text);
        int pid = reader.Started!.Pid;

        await C.ResizeProcessAsync(ProcessSelector.ByPid(pid), new PtySize(132, 50), ExecHelpers.Timeout(10));
        await C.Input(pid, "\n");
        // The new size, and SIGWINCH to the terminal's foreground process group (the shell's trap).
        Assert.True(await reader.ReadUntilAsync(r => r.Text.Contains("50 132\r\n") && r.Text.Contains("winch")), reader.Text);
        var listed = (await C.ListProcessesAsync(false, ExecHelpers.Timeout(10))).Single(p => p.Pid == pid);
        Assert.Equal(new PtySize(132, 50), listed.Pty);

        Assert.True(await C.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10)));
        Assert.Equal(9, (await reader.ReadToExitAsync()).Signal);
    }

    [Fact]
    public async Task A_terminal_process_can_be_reattached_and_has_no_separate_stdin_to_close()
    {
        int pid = await C.Start(OnPty("echo ready; exec cat"));
        await using (var first = C.Attach(pid))
            Assert.True(await first.ReadUntilTextAsync("ready\r\n"));
        await C.Input(pid, "again\n");
        await using var second = C.Attach(pid);
        Assert.True(await second.ReadUntilAsync(r => r.Text.Split("again\r\n").Length - 1 >= 2), second.Text);
        Assert.StartsWith("ready\r\n", second.Text);
        var e = await Assert.ThrowsAsync<AgentException>(() => C.CloseProcessStdinAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10)));
        Assert.Equal("bad_request", e.Code);
        Assert.True(await C.KillProcessAsync(ProcessSelector.ByPid(pid), ExecHelpers.Timeout(10)));
        await second.ReadToExitAsync();
    }
}
