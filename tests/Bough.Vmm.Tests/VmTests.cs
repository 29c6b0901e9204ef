using System.Net;
using System.Net.Sockets;
using System.Text;
using Bough.Vmm.Tracking;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Bough.Vmm.Tests;

[Collection(VmGroup.Name)]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "xunit disposes the fields through IAsyncLifetime.DisposeAsync")]
public sealed class VmTests : IAsyncLifetime
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(120);

    private readonly GuestFixture _guest;
    private readonly ILoggerFactory _lf;
    private readonly TempDir _dir = new("vm");
    private readonly List<VmProcess> _started = [];
    private readonly ITestOutputHelper _output;

    public VmTests(GuestFixture guest, ITestOutputHelper output)
    {
        _guest = guest;
        _output = output;
        _lf = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new XunitLoggerProvider(output)));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Whatever a test did, no QEMU may outlive it.</summary>
    public async Task DisposeAsync()
    {
        foreach (var vm in _started)
        {
            try { await vm.StopAsync(TimeSpan.FromSeconds(2), CancellationToken.None); } catch (Exception) { }
            await vm.DisposeAsync();
        }
        foreach (int pid in VmProcessScanner.FindQemuProcessesUnder(_dir.Path))
            Native.SendSignal(pid, null, Native.SIGKILL);
        _lf.Dispose();
        _dir.Dispose();
    }

    private string RuntimeDir(string name)
    {
        string dir = Path.Combine(_dir.Path, name);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private async Task<VmProcess> StartAsync(VmSpec spec)
    {
        var vm = await new VmLauncher(_lf).StartAsync(spec, CancellationToken.None);
        _started.Add(vm);
        return vm;
    }

    private static async Task WaitForConsoleAsync(VmProcess vm, string marker)
    {
        using var cts = new CancellationTokenSource(BootTimeout);
        while (true)
        {
            string text = File.Exists(vm.ConsoleLogPath) ? await File.ReadAllTextAsync(vm.ConsoleLogPath, CancellationToken.None) : "";
            if (text.Contains(marker, StringComparison.Ordinal)) return;
            if (cts.IsCancellationRequested || vm.Exited.IsCompleted)
                Assert.Fail($"'{marker}' not on console (exited={vm.Exited.IsCompleted}). Console:\n{text}");
            await Task.Delay(100, CancellationToken.None);
        }
    }

    private static void AssertGone(int pid, string runtimeDir)
    {
        Assert.False(ProcFs.IsRunning(pid), $"PID {pid} still running");
        Assert.Empty(VmProcessScanner.FindQemuProcessesUnder(runtimeDir));
    }

    [Fact]
    public async Task Start_Boots_ConsoleQmpEventsAgentPorts_ThenStopLeavesNoProcess()
    {
        string dir = RuntimeDir("boot");
        var vm = await StartAsync(_guest.Spec(dir, "sb-boot"));

        Assert.True(vm.IsAlive);
        Assert.Equal(dir, vm.RuntimeDir);
        Assert.Equal(vm.Pid, VmProcess.ReadPidFile(Path.Combine(dir, RuntimeDirLayout.PidFileName)));
        string args = await File.ReadAllTextAsync(Path.Combine(dir, RuntimeDirLayout.ArgsFileName));
        _output.WriteLine("qemu.args: " + args);
        Assert.Contains("memory-backend-file,id=mem,size=256M,mem-path=" + Path.Combine(dir, "memory") + ",share=off", args);
        Assert.Contains("-accel tcg,tb-size=64", args);
        Assert.DoesNotContain("restrict=on", args);
        Assert.Equal(256L * 1024 * 1024, new FileInfo(Path.Combine(dir, "memory")).Length);
        Assert.Contains(vm.Pid, VmProcessScanner.FindQemuProcessesUnder(_dir.Path));
        // Written-page tracking: QEMU holds a userfaultfd at the agreed descriptor (from the preload library, which
        // only QEMU loaded), and the daemon has armed its copy.
        Assert.StartsWith("LD_PRELOAD=" + Path.Combine(dir, RuntimeDirLayout.PreloadLibraryName) + " ", args, StringComparison.Ordinal);
        Assert.Equal("anon_inode:[userfaultfd]", new FileInfo($"/proc/{vm.Pid}/fd/{WrittenPageTracker.QemuDescriptor}").LinkTarget);
        Assert.True(vm.WriteTracker.IsArmed, vm.WriteTracker.Status);

        await WaitForConsoleAsync(vm, GuestFixture.ReadyMarker);

        // QMP: status, then stop/cont with their events.
        var status = await vm.Qmp.QueryStatusAsync(CancellationToken.None);
        Assert.Equal(new QmpRunStatus(true, "running"), status);
        using (var events = vm.Qmp.SubscribeEvents())
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await vm.Qmp.StopAsync(cts.Token);
            await events.WaitForAsync("STOP", cts.Token);
            status = await vm.Qmp.QueryStatusAsync(cts.Token);
            Assert.Equal(new QmpRunStatus(false, "paused"), status);
            await vm.Qmp.ContAsync(cts.Token);
            await events.WaitForAsync("RESUME", cts.Token);
        }
        // The default event channel saw them too.
        var names = new List<string>();
        while (vm.Qmp.Events.TryRead(out var ev)) names.Add(ev.Name);
        Assert.Contains("STOP", names);
        Assert.Contains("RESUME", names);

        var error = await Assert.ThrowsAsync<QmpException>(() => vm.Qmp.ExecuteAsync("no-such-command", null, CancellationToken.None));
        Assert.Equal("CommandNotFound", error.ErrorClass);
        string hmp = await vm.Qmp.HumanMonitorCommandAsync("info name", CancellationToken.None);
        Assert.Contains("sb-boot", hmp);

        // Agent channel: the guest writes pings on the virtio-serial port.
        using (var agent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await agent.ConnectAsync(new UnixDomainSocketEndPoint(vm.AgentSocketPath), cts.Token);
            var buffer = new byte[256];
            var received = new StringBuilder();
            while (!received.ToString().Contains(GuestFixture.AgentPing))
            {
                int n = await agent.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                Assert.True(n > 0, "agent socket closed");
                received.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }

        // Port forward: guest httpd reached through the resolved host port.
        var port = Assert.Single(vm.Ports);
        Assert.Equal(GuestFixture.GuestHttpPort, port.GuestPort);
        Assert.NotEqual(0, port.HostPort);
        Assert.Contains($"hostfwd=tcp:127.0.0.1:{port.HostPort}-:{GuestFixture.GuestHttpPort}", args);
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
        {
            string body = await http.GetStringAsync($"http://127.0.0.1:{port.HostPort}/index.html");
            Assert.Contains(GuestFixture.HttpBody, body);
        }

        // A second start in the same runtime dir is refused while the VM runs.
        await Assert.ThrowsAsync<InvalidOperationException>(() => new VmLauncher(_lf).StartAsync(_guest.Spec(dir, "dup"), CancellationToken.None));
        Assert.True(vm.IsAlive);

        await vm.StopAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(vm.Exited.IsCompletedSuccessfully);
        Assert.False(vm.IsAlive);
        AssertGone(vm.Pid, dir);
        await vm.StopAsync(TimeSpan.FromSeconds(1), CancellationToken.None); // idempotent
        await vm.Qmp.Disconnected.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task InternetFalse_AddsRestrictOn_AndPortForwardStillWorks()
    {
        string dir = RuntimeDir("norest");
        var vm = await StartAsync(_guest.Spec(dir, "sb-offline") with { Internet = false });
        string[] argv = ProcFs.ReadCmdline(vm.Pid)!;
        string netdev = argv[Array.IndexOf(argv, "-netdev") + 1];
        Assert.StartsWith("user,id=n0,ipv6=off,restrict=on,hostfwd=tcp:127.0.0.1:", netdev);

        await WaitForConsoleAsync(vm, GuestFixture.ReadyMarker);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        Assert.Contains(GuestFixture.HttpBody, await http.GetStringAsync($"http://127.0.0.1:{vm.Ports[0].HostPort}/"));
        await vm.StopAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        AssertGone(vm.Pid, dir);
    }

    [Fact]
    public async Task BadKernelPath_FailsWithQemuStderr_AndLeavesNoProcess()
    {
        string dir = RuntimeDir("badkernel");
        var spec = _guest.Spec(dir, "sb-bad") with { KernelPath = Path.Combine(dir, "no-such-vmlinuz") };
        var ex = await Assert.ThrowsAsync<VmStartException>(() => new VmLauncher(_lf).StartAsync(spec, CancellationToken.None));
        Assert.Contains("no-such-vmlinuz", ex.Message);
        Assert.NotNull(ex.QemuStderr);
        Assert.Contains("kernel", ex.QemuStderr, StringComparison.OrdinalIgnoreCase);
        Assert.NotEqual(0, ex.ExitCode);
        Assert.Empty(VmProcessScanner.FindQemuProcessesUnder(dir));
        Assert.Null(await VmProcess.TryAdoptAsync(dir, _lf, CancellationToken.None));
    }

    [Fact]
    public async Task BusyExplicitHostPort_FailsClearly_AndLeavesNoProcess()
    {
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        int busy = ((IPEndPoint)blocker.LocalEndpoint).Port;
        string dir = RuntimeDir("busyport");
        var spec = _guest.Spec(dir, "sb-busy") with { Ports = [new PortForward(80, busy)] };
        var ex = await Assert.ThrowsAsync<VmStartException>(() => new VmLauncher(_lf).StartAsync(spec, CancellationToken.None));
        Assert.Contains("forwarding", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(VmProcessScanner.FindQemuProcessesUnder(dir));
    }

    [Fact]
    public async Task SocketPathTooLong_IsRejectedBeforeStarting()
    {
        string dir = Path.Combine(_dir.Path, new string('x', 100));
        var spec = _guest.Spec(RuntimeDir("short"), "sb-long") with { RuntimeDir = dir };
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => new VmLauncher(_lf).StartAsync(spec, CancellationToken.None));
        Assert.Contains("107", ex.Message);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task Adopt_AfterDetach_FindsRunningVm_ThenRefusesDeadAndReusedPid()
    {
        string dir = RuntimeDir("adopt");
        var first = await StartAsync(_guest.Spec(dir, "sb-adopt"));
        int pid = first.Pid;
        var ports = first.Ports;
        // Simulated daemon restart: drop our handle without stopping the VM.
        _started.Remove(first);
        await first.DisposeAsync();
        Assert.False(first.Exited.IsCompleted, "detaching must not look like an exit");
        Assert.True(ProcFs.IsRunning(pid));
        Assert.Equal([pid], VmProcessScanner.FindQemuProcessesUnder(dir));

        var adopted = await VmProcess.TryAdoptAsync(dir, _lf, CancellationToken.None);
        Assert.NotNull(adopted);
        _started.Add(adopted);
        Assert.Equal(pid, adopted.Pid);
        Assert.Equal(ports, adopted.Ports);
        Assert.True(adopted.WriteTracker.IsArmed, adopted.WriteTracker.Status); // re-armed from QEMU's userfaultfd
        Assert.Equal(Path.Combine(dir, "agent.sock"), adopted.AgentSocketPath);
        var status = await adopted.Qmp.QueryStatusAsync(CancellationToken.None);
        Assert.Equal("running", status.Status);
        await WaitForConsoleAsync(adopted, GuestFixture.ReadyMarker);

        await adopted.StopAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        AssertGone(pid, dir);
        Assert.Null(await VmProcess.TryAdoptAsync(dir, _lf, CancellationToken.None)); // dead

        // PID reused by an unrelated process: this test host is alive but is not that QEMU.
        await File.WriteAllTextAsync(Path.Combine(dir, "qemu.pid"), Environment.ProcessId + "\n");
        Assert.Null(await VmProcess.TryAdoptAsync(dir, _lf, CancellationToken.None));
        await File.WriteAllTextAsync(Path.Combine(dir, "qemu.pid"), "garbage");
        Assert.Null(await VmProcess.TryAdoptAsync(dir, _lf, CancellationToken.None));
    }

    [Fact]
    public async Task Adopt_RefusesLiveQemuOfAnotherRuntimeDir()
    {
        string dirA = RuntimeDir("a");
        string dirB = RuntimeDir("b");
        var vm = await StartAsync(_guest.Spec(dirA, "sb-a"));
        await File.WriteAllTextAsync(Path.Combine(dirB, "qemu.pid"), vm.Pid + "\n");
        Assert.Null(await VmProcess.TryAdoptAsync(dirB, _lf, CancellationToken.None));
        Assert.Empty(VmProcessScanner.FindQemuProcessesUnder(dirB));
        await vm.StopAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
    }

    [Fact]
    public async Task ExternalKill_CompletesExited()
    {
        string dir = RuntimeDir("kill");
        var vm = await StartAsync(_guest.Spec(dir, "sb-kill"));
        Native.SendSignal(vm.Pid, null, Native.SIGKILL);
        await vm.Exited.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(vm.IsAlive);
        await vm.Qmp.Disconnected.WaitAsync(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => vm.Qmp.QueryStatusAsync(CancellationToken.None));
        await vm.StopAsync(TimeSpan.FromSeconds(1), CancellationToken.None); // no-op on a dead VM
        AssertGone(vm.Pid, dir);
    }
}

[Collection(VmGroup.Name)]
public sealed class VmCancellationTests(GuestFixture guest, ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("vmc");
    private readonly ILoggerFactory _lf = LoggerFactory.Create(b => b.AddProvider(new XunitLoggerProvider(output)));

    public void Dispose()
    {
        _lf.Dispose();
        _dir.Dispose();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(30)]
    [InlineData(120)]
    public async Task CancelledStart_LeavesNoProcess(int cancelAfterMs)
    {
        string dir = Path.Combine(_dir.Path, "c" + cancelAfterMs);
        Directory.CreateDirectory(dir);
        using var cts = new CancellationTokenSource();
        if (cancelAfterMs == 0) cts.Cancel(); else cts.CancelAfter(cancelAfterMs);
        VmProcess? vm = null;
        try
        {
            vm = await new VmLauncher(_lf).StartAsync(guest.Spec(dir, "sb-cancel"), cts.Token);
        }
        catch (OperationCanceledException) { }
        if (vm is not null)
        {
            // Cancellation came too late to matter: the start completed and we own the VM.
            await vm.StopAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
            await vm.DisposeAsync();
        }
        Assert.Empty(VmProcessScanner.FindQemuProcessesUnder(dir));
    }
}
