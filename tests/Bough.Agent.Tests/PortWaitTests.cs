using System.Diagnostics;

namespace Bough.Agent.Tests;

/// <summary>
/// The agent in guest mode (<c>--device</c>) waiting on its port with no host: it must sleep in the kernel, not poll on
/// a timer (under TCG every guest wakeup costs host CPU, for every idle sandbox), and still stop at once on SIGTERM.
/// A FIFO opened read-write stands in for the virtio-serial port: it never becomes readable and never hangs up.
/// </summary>
public sealed class PortWaitTests
{
    [Fact]
    public async Task Idle_agent_on_its_port_does_not_wake_up()
    {
        await using var agent = await DeviceAgent.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(2)); // start-up: JIT tiering, thread pool warm-up
        long before = agent.VoluntarySwitches();
        await Task.Delay(TimeSpan.FromSeconds(4));
        long wakeups = agent.VoluntarySwitches() - before;
        // A timed 200 ms poll slice alone would be 20 here; the runtime's own threads wake once or twice.
        Assert.True(wakeups < 5, $"the idle agent woke {wakeups} times in 4 s\n{agent.Log}");
    }

    [Fact]
    public async Task Sigterm_ends_an_agent_blocked_on_its_port_promptly()
    {
        await using var agent = await DeviceAgent.StartAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));
        var sw = Stopwatch.StartNew();
        agent.Terminate();
        Assert.True(await agent.WaitForExitAsync(TimeSpan.FromSeconds(5)), $"agent still running 5 s after SIGTERM\n{agent.Log}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"agent took {sw.Elapsed.TotalMilliseconds:F0} ms to stop");
        Assert.Equal(0, agent.ExitCode);
        // Guest mode with --device is how tests run the agent on a host: it must not touch the host's PIT (the agent
        // stops the guest's only when it found its port by name, in a VM). Verbose, a run would log either outcome.
        Assert.DoesNotContain("legacy timer", agent.Log, StringComparison.Ordinal);
    }

    private sealed class DeviceAgent : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly TempDir _dir;
        private readonly System.Text.StringBuilder _log = new();

        private DeviceAgent(Process process, TempDir dir)
        {
            _process = process;
            _dir = dir;
            process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine(e.Data); };
            process.BeginErrorReadLine();
        }

        public string Log { get { lock (_log) return _log.ToString(); } }
        public int ExitCode => _process.ExitCode;

        public static async Task<DeviceAgent> StartAsync()
        {
            var dir = new TempDir("agent-port");
            string fifo = dir.Combine("port");
            using (var mk = Process.Start("mkfifo", [fifo])) await mk.WaitForExitAsync();
            var psi = new ProcessStartInfo(AgentProcess.BinaryPath()) { RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "--device", fifo, "--hostname-file", dir.Combine("hostname"), "--verbose" }) psi.ArgumentList.Add(a);
            var agent = new DeviceAgent(Process.Start(psi)!, dir);
            Assert.True(await Poll.UntilAsync(() => agent.Log.Contains("starting", StringComparison.Ordinal) || agent._process.HasExited,
                TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(20)), "agent did not start");
            Assert.False(agent._process.HasExited, agent.Log);
            return agent;
        }

        /// <summary>Voluntary context switches of every thread of the agent: each is a wakeup after a sleep.</summary>
        public long VoluntarySwitches() =>
            Directory.EnumerateDirectories($"/proc/{_process.Id}/task").Sum(task =>
            {
                try
                {
                    return File.ReadLines(Path.Combine(task, "status"))
                        .Where(l => l.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                        .Sum(l => long.Parse(l.Split(':')[1].Trim(), System.Globalization.CultureInfo.InvariantCulture));
                }
                catch (IOException) { return 0L; } // a thread that ended meanwhile
            });

        public void Terminate()
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }

        public async Task<bool> WaitForExitAsync(TimeSpan timeout)
        {
            try { await _process.WaitForExitAsync().WaitAsync(timeout); return true; }
            catch (TimeoutException) { return false; }
        }

        public async ValueTask DisposeAsync()
        {
            try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await _process.WaitForExitAsync();
            _process.Dispose();
            _dir.Dispose();
        }
    }
}
