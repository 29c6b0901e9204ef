using System.Diagnostics;
using System.Text;
using Bough.AgentClient;
using Bough.Images;
using Bough.Images.Kernel;
using Bough.Images.Publish;
using Bough.Vmm;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Bough.Snapshots.Tests;

/// <summary>
/// The real guest: Debian cloud kernel and the base image with the real agent, built once into the
/// shared test cache (override with BOUGH_TEST_DATA), like the Images tests.
/// </summary>
public sealed class GuestImageFixture : IAsyncLifetime
{
    public static string CacheDataDir =>
        Environment.GetEnvironmentVariable("BOUGH_TEST_DATA") is { Length: > 0 } d ? d : "/var/tmp/bough-test-cache/data";

    public GuestKernel Kernel { get; private set; } = null!;
    public BaseImage Image { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Kernel = await new KernelProvider(CacheDataDir).EnsureAsync(null, CancellationToken.None);
        string agent = AgentLocator.Find() is { } a && File.Exists(a) ? a
            : throw new InvalidOperationException("The guest agent was not published next to the tests (build/Agent.targets).");
        Image = await new BaseImageBuilder(CacheDataDir, Kernel, agent).EnsureBaseAsync(null, CancellationToken.None);
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition("vms")]
public sealed class VmGroup : ICollectionFixture<GuestImageFixture>;

/// <summary>Routes library logs into the xunit output.</summary>
internal sealed class XunitLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new XunitLogger(output, categoryName);
    public void Dispose() { }

    private sealed class XunitLogger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try { output.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {logLevel} {category}: {formatter(state, exception)}"); }
            catch (InvalidOperationException) { }
        }
    }
}

/// <summary>A guest VM with its agent connection; stopping it is never forgotten (see <see cref="Lab"/>).</summary>
public sealed class TestVm
{
    public required string Name { get; init; }
    public required string Dir { get; init; }
    public required VmProcess Vm { get; set; }
    public required AgentConnection Agent { get; set; }
    /// <summary>The qcow2 the VM writes to now (changes with every capture).</summary>
    public required string ActiveDisk { get; set; }
    /// <summary>The file the VM maps as RAM.</summary>
    public required string MemoryFile { get; init; }
    /// <summary>The snapshot the memory file is (null after a fresh boot).</summary>
    public SnapshotRef? MemoryBase { get; init; }
    /// <summary>The VM's latest snapshot (parent for the next capture).</summary>
    public SnapshotRef? LastSnapshot { get; set; }
    private int _disks;
    public string NewDiskPath() => Path.Combine(Dir, $"disk-{++_disks}.qcow2");

    public async Task<string> ShAsync(string script, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        var (exit, stdout, stderr) = await Agent.RunToCompletionAsync(new ExecSpec { Argv = ["sh", "-c", script] }, cts.Token);
        if (exit.ExitCode != 0)
            throw new Xunit.Sdk.XunitException($"{Name}: `{script}` exited {exit.ExitCode}: {Encoding.UTF8.GetString(stderr)}");
        return Encoding.UTF8.GetString(stdout).Trim();
    }

    public async Task<bool> IsRunningAsync()
    {
        var s = await Vm.Qmp.QueryStatusAsync(CancellationToken.None);
        return s.Running;
    }
}

/// <summary>
/// A test's VMs and snapshots under one short temp dir (Unix socket paths stay short). Disposing stops
/// every QEMU it started and removes the directory.
/// </summary>
public sealed class Lab : IAsyncDisposable
{
    private static readonly TimeSpan AgentTimeout = TimeSpan.FromSeconds(180);
    private readonly GuestImageFixture _fx;
    private readonly ITestOutputHelper _out;
    private readonly List<TestVm> _vms = [];
    private readonly ILoggerFactory _lf;

    public Lab(GuestImageFixture fx, ITestOutputHelper output)
    {
        _fx = fx;
        _out = output;
        Root = Path.Combine("/tmp/bough-snap-tests", Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(SnapshotsDir);
        // Like the engine's data dir: only root may enter, so the jailed QEMUs get every later file as a descriptor.
        File.SetUnixFileMode(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _lf = LoggerFactory.Create(b => b.AddProvider(new XunitLoggerProvider(output)).SetMinimumLevel(LogLevel.Information));
        Launcher = new VmLauncher(_lf);
        Capturer = new SnapshotCapturer(_lf.CreateLogger<SnapshotCapturer>());
        Restorer = new SnapshotRestorer(_lf.CreateLogger<SnapshotRestorer>());
    }

    public string Root { get; }
    public string SnapshotsDir => Path.Combine(Root, "snapshots");
    public VmLauncher Launcher { get; }
    public SnapshotCapturer Capturer { get; }
    public SnapshotRestorer Restorer { get; }
    public void Log(string line) => _out.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    /// <summary>Each VM runs jailed as the engine runs it: its own uid, seccomp, a cgroup (VmLauncher adds them).</summary>
    private VmConfinement NextJail() => new(JailUidBase + Interlocked.Increment(ref _jails), JailUidBase)
    {
        Limits = new CgroupLimits((256L + 192 + 64) << 20, 1, 256),
        CgroupParent = CgroupParent,
    };

    private static readonly int JailUidBase = 1_900_050_000 + Random.Shared.Next(0, 10_000);
    private int _jails;

    /// <summary>This lab's group of VM cgroups (VM names repeat across labs).</summary>
    private string CgroupParent => "bough-snap-" + Path.GetFileName(Root);

    private VmSpec Spec(string name, string dir, string disk) => new()
    {
        Confinement = NextJail(),
        Name = name,
        RuntimeDir = dir,
        KernelPath = _fx.Kernel.KernelPath,
        InitrdPath = _fx.Kernel.InitrdPath,
        KernelCmdline = _fx.Kernel.CommandLine,
        DiskPath = disk,
        Accel = "tcg",
        MemoryMiB = 256,
        Internet = false,
    };

    public async Task<TestVm> BootAsync(string name)
    {
        var sw = Stopwatch.StartNew();
        string dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        string disk = Path.Combine(dir, "disk.qcow2");
        await Run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", _fx.Image.DiskPath, disk);
        var vm = await Launcher.StartAsync(Spec(name, dir, disk), CancellationToken.None);
        var t = new TestVm { Name = name, Dir = dir, Vm = vm, Agent = null!, ActiveDisk = disk, MemoryFile = Path.Combine(dir, "memory") };
        _vms.Add(t);
        t.Agent = await AgentConnection.ConnectAsync(vm.AgentSocketPath, _lf.CreateLogger("agent." + name), AgentTimeout, CancellationToken.None);
        Log($"{name}: booted to agent in {sw.ElapsedMilliseconds} ms");
        return t;
    }

    public async Task<TestVm> RestoreAsync(string name, SnapshotRef snapshot)
    {
        var sw = Stopwatch.StartNew();
        string dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        string disk = Path.Combine(dir, "disk.qcow2");
        await SnapshotRestorer.CreateChildDiskAsync(snapshot, disk, CancellationToken.None);
        var vm = await Restorer.RestoreAsync(Launcher, Spec(name, dir, disk), snapshot, CancellationToken.None);
        long restoreMs = sw.ElapsedMilliseconds;
        var t = new TestVm
        {
            Name = name, Dir = dir, Vm = vm, Agent = null!, ActiveDisk = disk,
            MemoryFile = Path.Combine(snapshot.Dir, SnapshotFiles.Image), MemoryBase = snapshot, LastSnapshot = snapshot,
        };
        _vms.Add(t);
        t.Agent = await AgentConnection.ConnectAsync(vm.AgentSocketPath, _lf.CreateLogger("agent." + name), AgentTimeout, CancellationToken.None);
        Log($"{name}: restored from {snapshot.Id}: running after {restoreMs} ms (restorer says {Restorer.LastRestoreMs} ms), agent after {sw.ElapsedMilliseconds} ms");
        return t;
    }

    /// <summary>Captures <paramref name="vm"/> into snapshots/&lt;id&gt; (staging dir, then rename, as the engine would).</summary>
    public async Task<(SnapshotRef Snapshot, CaptureResult Result)> CaptureAsync(TestVm vm, string id, SnapshotCapturer? capturer = null)
    {
        string staging = Path.Combine(SnapshotsDir, ".staging-" + id);
        var result = await (capturer ?? Capturer).CaptureAsync(new CaptureRequest(vm.Vm, staging, vm.MemoryFile, vm.MemoryBase, vm.ActiveDisk, vm.NewDiskPath())
        {
            Parent = vm.LastSnapshot,
        }, CancellationToken.None);
        string final = Path.Combine(SnapshotsDir, id);
        Directory.Move(staging, final);
        var snap = new SnapshotRef(id, final);
        vm.ActiveDisk = result.ActiveDiskPath;
        // Published: the VM's new overlay now names the snapshot's copy of its backing file.
        await SnapshotCapturer.RepointActiveDiskAsync(vm.Vm, vm.ActiveDisk, snap, CancellationToken.None);
        vm.LastSnapshot = snap;
        Log($"{vm.Name} -> {id}: pause {result.PauseMs} ms (pagemap {result.Timings.PagemapMs}, copy {result.Timings.CopyPagesMs}, " +
            $"device {result.Timings.DeviceStateMs}, disk {result.Timings.DiskSwitchMs}), after resume {result.Timings.AfterResumeMs} ms; " +
            $"changed {result.ChangedPages}, stored {result.StoredPages} ({result.BytesStored / 1024} KiB), zero {result.ZeroPages}, " +
            $"deduped {result.DedupedPages}, layers [{string.Join(",", result.Metadata.LayerIds)}]");
        return (snap, result);
    }

    public async Task StopAsync(TestVm vm)
    {
        await vm.Agent.DisposeAsync();
        await vm.Vm.StopAsync(TimeSpan.FromSeconds(3), CancellationToken.None);
        await vm.Vm.DisposeAsync();
        _vms.Remove(vm);
    }

    public static async Task Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {await err}");
    }

    public static async Task<string> Output(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var stdout = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {await err}");
        return stdout;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var vm in _vms.ToArray())
        {
            try { await StopAsync(vm); }
            catch (Exception e) { _out.WriteLine($"stopping {vm.Name}: {e.Message}"); }
        }
        _lf.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        var cgroups = CgroupTree.Detect();
        if (cgroups.Version == CgroupVersion.None) return;
        cgroups.RemoveStale(CgroupParent, new HashSet<string>());
        foreach (string parent in cgroups.DirectoriesOf(CgroupParent, "x").Select(d => Path.GetDirectoryName(d)!))
            try { Directory.Delete(parent); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
