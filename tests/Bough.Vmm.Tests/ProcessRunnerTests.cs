using System.Diagnostics;

namespace Bough.Vmm.Tests;

/// <summary>The process runner with real processes (sh, sleep).</summary>
public sealed class ProcessRunnerTests : IDisposable
{
    private readonly TempDir _dir = new("proc");

    public void Dispose() => _dir.Dispose();

    private static bool Alive(int pid) =>
        File.Exists($"/proc/{pid}/stat") && File.ReadAllText($"/proc/{pid}/stat").Split(')')[^1].Trim()[0] is not ('Z' or 'X');

    private static async Task<int> WaitForPidFileAsync(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), out int pid)) return pid;
            await Task.Delay(20);
        }
        throw new TimeoutException($"{path} never appeared");
    }

    [Fact]
    public async Task Captures_exit_code_stdout_and_stderr_without_a_shell_between()
    {
        var r = await ProcessRunner.RunAsync("sh", ["-c", "printf '%s' \"$1\"; echo oops >&2; exit 3", "sh", "a 'b' $c"],
            new ProcessRunOptions { WorkingDirectory = _dir.Path }, CancellationToken.None);
        Assert.Equal(new ProcessResult(3, "a 'b' $c", "oops\n"), r);
        Assert.False(r.Succeeded);
        Assert.Equal(_dir.Path, (await ProcessRunner.RunAsync("pwd", [], new ProcessRunOptions { WorkingDirectory = _dir.Path },
            CancellationToken.None)).Stdout.Trim());
    }

    [Fact]
    public async Task Cancellation_kills_the_whole_process_tree()
    {
        string pidFile = Path.Combine(_dir.Path, "child.pid");
        using var cts = new CancellationTokenSource();
        var run = ProcessRunner.RunAsync("sh", ["-c", $"sleep 300 & echo $! > {pidFile}; wait"], cts.Token);
        int child = await WaitForPidFileAsync(pidFile);
        Assert.True(Alive(child));

        var sw = Stopwatch.StartNew();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"cancellation took {sw.Elapsed}");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (Alive(child) && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.False(Alive(child), "the grandchild survived the cancellation");
    }

    [Fact]
    public async Task Timeout_kills_and_throws()
    {
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<TimeoutException>(() => ProcessRunner.RunAsync("sh", ["-c", "echo started >&2; sleep 300"],
            new ProcessRunOptions { Timeout = TimeSpan.FromMilliseconds(300) }, CancellationToken.None));
        Assert.Contains("started", e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_child_left_holding_the_pipes_does_not_hang_the_runner()
    {
        // Like QEMU's -daemonize gone wrong: the launcher exits, a child keeps its stdout open.
        string pidFile = Path.Combine(_dir.Path, "daemon.pid");
        var sw = Stopwatch.StartNew();
        var r = await ProcessRunner.RunAsync("sh", ["-c", $"echo ready; sleep 300 & echo $! > {pidFile}"],
            new ProcessRunOptions { OutputDrainTimeout = TimeSpan.FromMilliseconds(300) }, CancellationToken.None);
        int daemon = await WaitForPidFileAsync(pidFile);
        try
        {
            Assert.Equal(0, r.ExitCode);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        }
        finally
        {
            Process.GetProcessById(daemon).Kill();
        }
    }

    [Fact]
    public async Task A_missing_executable_is_an_IOException() =>
        await Assert.ThrowsAsync<IOException>(() => ProcessRunner.RunAsync("/nonexistent/tool", [], CancellationToken.None));
}
