using System.Diagnostics;
using System.Text;
using Bough.AgentClient;
using Bough.Images;
using Bough.Images.Kernel;
using Bough.Images.Publish;
using Bough.Snapshots;
using Bough.Vmm;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Bench;

/// <summary>
/// Written-page tracking against the full scan, on the libraries directly (no daemon, so both run in one process and
/// one run): a long-lived source boots, is captured, writes and frees 400 MiB in guest tmpfs, is captured, then
/// repeatedly writes 16 MiB and is captured. Those last captures' stop windows are the figure: with tracking they copy
/// what was written since the previous capture (most of it before the VM stops), without it everything QEMU holds, in
/// the window. Guests of 512 MiB and 2 GiB.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public static class TrackingBench
{
    private const int SmallWriteMiB = 16;

    private sealed record Figures(int MemoryMiB, bool Tracking, string FirstMethod, long BigPauseMs, double BigCopiedMiB,
        List<double> Pauses, List<double> Copied, List<string> Methods, List<CaptureTimings> Timings);

    public static async Task RunAsync(string dataDir, int runs)
    {
        var kernel = await new KernelProvider(dataDir).EnsureAsync(null, CancellationToken.None);
        string agent = AgentLocator.Find() ?? throw new InvalidOperationException("the guest agent is not next to the bench (build/Agent.targets)");
        var image = await new BaseImageBuilder(dataDir, kernel, agent).EnsureBaseAsync(null, CancellationToken.None);
        string root = Path.Combine("/tmp", "bough-bench-track-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Console.WriteLine();
        Console.WriteLine($"## stop window of a capture after {SmallWriteMiB} MiB written, the source having written and freed 400 MiB before (runs={runs})");
        var all = new List<Figures>();
        try
        {
            foreach (int mem in new[] { 512, 2048 })
                foreach (bool tracking in new[] { true, false })
                    all.Add(await MeasureAsync(root, kernel, image, mem, tracking, runs));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        Console.WriteLine();
        Console.WriteLine("| guest | tracking | capture after 400 MiB: pause ms / copied MiB | capture after 16 MiB: pause ms p50 (p95, min-max) | copied MiB p50 (in the window) | method |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var f in all)
        {
            var window = f.Timings.Select(t => t.WindowPages * 4096.0 / (1 << 20)).ToList();
            Console.WriteLine($"| {f.MemoryMiB} MiB | {(f.Tracking ? "on" : "off")} | {f.BigPauseMs} / {f.BigCopiedMiB:F0} | " +
                              $"{Stats.Percentile(f.Pauses, 50):F0} ({Stats.Percentile(f.Pauses, 95):F0}, {f.Pauses.Min():F0}-{f.Pauses.Max():F0}) | " +
                              $"{Stats.Percentile(f.Copied, 50):F1} ({Stats.Percentile(window, 50):F1}) | {string.Join(",", f.Methods.Distinct())} |");
        }
        foreach (int mem in all.Select(f => f.MemoryMiB).Distinct())
        {
            double on = Stats.Percentile(all.First(f => f.MemoryMiB == mem && f.Tracking).Pauses, 50);
            double off = Stats.Percentile(all.First(f => f.MemoryMiB == mem && !f.Tracking).Pauses, 50);
            Console.WriteLine($"{mem} MiB: tracking on / off = {on / off:F3} (p50 {on:F0} vs {off:F0} ms)");
        }
        Console.WriteLine("inside the window, p50 ms (scan / copy / device state / disk switch / rest = stop+cont):");
        foreach (var f in all)
        {
            double P(Func<CaptureTimings, long> x) => Stats.Percentile(f.Timings.Select(t => (double)x(t)).ToList(), 50);
            var rest = f.Pauses.Zip(f.Timings, (p, t) => p - t.PagemapMs - t.CopyPagesMs - t.DeviceStateMs - t.DiskSwitchMs).ToList();
            Console.WriteLine($"  {f.MemoryMiB} MiB, tracking {(f.Tracking ? "on " : "off")}: {P(t => t.PagemapMs)} / {P(t => t.CopyPagesMs)} / " +
                              $"{P(t => t.DeviceStateMs)} / {P(t => t.DiskSwitchMs)} / {Stats.Percentile(rest, 50)}");
        }
        double small = Stats.Percentile(all.First(f => f.MemoryMiB == 512 && f.Tracking).Pauses, 50);
        double large = Stats.Percentile(all.First(f => f.MemoryMiB == 2048 && f.Tracking).Pauses, 50);
        Console.WriteLine($"tracking on, 2 GiB / 512 MiB guest = {large / small:F2}");
    }

    private static async Task<Figures> MeasureAsync(string root, GuestKernel kernel, BaseImage image, int mem, bool tracking, int runs)
    {
        string name = $"t{mem}{(tracking ? "on" : "off")}";
        string dir = Path.Combine(root, name);
        string snapshots = Path.Combine(root, "snapshots-" + name);
        Directory.CreateDirectory(dir);
        Directory.CreateDirectory(snapshots);
        string disk = Path.Combine(dir, "disk.qcow2");
        await QemuImg.CreateOverlayAsync(image.DiskPath, disk, CancellationToken.None);
        var spec = new VmSpec
        {
            Name = name, RuntimeDir = dir, KernelPath = kernel.KernelPath, InitrdPath = kernel.InitrdPath,
            KernelCmdline = kernel.CommandLine, DiskPath = disk, Accel = "tcg", MemoryMiB = mem, Internet = false,
            TrackWrites = tracking,
        };
        var vm = await new VmLauncher(NullLoggerFactory.Instance).StartAsync(spec, CancellationToken.None);
        try
        {
            await using var agent = await AgentConnection.ConnectAsync(vm.AgentSocketPath, NullLogger.Instance, TimeSpan.FromMinutes(3), CancellationToken.None);
            var source = new Source(vm, Path.Combine(dir, RuntimeDirLayout.MemoryFileName), disk, dir, snapshots);
            long pteBefore = PageTablesKiB(vm.Pid);
            var first = await source.CaptureAsync();
            long pteAfter = PageTablesKiB(vm.Pid);
            // Written and freed: 2 × 200 MiB (a 512 MiB guest's tmpfs holds half its RAM).
            for (int i = 0; i < 2; i++) await ShAsync(agent, "head -c 209715200 /dev/urandom > /dev/shm/big && rm /dev/shm/big");
            var big = await source.CaptureAsync();
            var pauses = new List<double>();
            var copied = new List<double>();
            var methods = new List<string>();
            var timings = new List<CaptureTimings>();
            for (int r = 0; r < runs; r++)
            {
                await ShAsync(agent, $"rm -f /dev/shm/small; head -c {SmallWriteMiB << 20} /dev/urandom > /dev/shm/small");
                var c = await source.CaptureAsync();
                pauses.Add(c.PauseMs);
                copied.Add(c.ChangedPages * 4096.0 / (1 << 20));
                methods.Add(c.Tracking);
                timings.Add(c.Timings);
            }
            Console.WriteLine($"{mem,5} MiB, tracking {(tracking ? "on " : "off")}: {vm.WriteTracker.Status}; page tables {pteBefore} -> {pteAfter} KiB " +
                              $"over the first capture ({first.TotalMs} ms in all); first capture {first.PauseMs} ms ({first.Tracking}), " +
                              $"after 400 MiB {big.PauseMs} ms ({big.ChangedPages * 4096.0 / (1 << 20):F0} MiB copied, {big.Tracking}); " +
                              $"after {SmallWriteMiB} MiB: [{string.Join(", ", pauses)}] ms");
            return new Figures(mem, tracking, first.Tracking, big.PauseMs, big.ChangedPages * 4096.0 / (1 << 20), pauses, copied, methods, timings);
        }
        finally
        {
            await vm.StopAsync(TimeSpan.FromSeconds(3), CancellationToken.None);
            await vm.DisposeAsync();
            Directory.Delete(snapshots, recursive: true);
        }
    }

    /// <summary>VmPTE of /proc/PID/status: what the tracker's write-protect markers cost in page tables.</summary>
    private static long PageTablesKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmPTE:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);

    private static async Task ShAsync(AgentConnection agent, string script)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var (exit, _, stderr) = await agent.RunToCompletionAsync(new ExecSpec { Argv = ["sh", "-c", script] }, cts.Token);
        if (exit.ExitCode != 0) throw new InvalidOperationException($"`{script}` exited {exit.ExitCode}: {Encoding.UTF8.GetString(stderr)}");
    }

    /// <summary>A VM captured again and again, each capture the parent of the next, as the engine does it.</summary>
    private sealed class Source(VmProcess vm, string memoryFile, string disk, string dir, string snapshots)
    {
        private readonly SnapshotCapturer _capturer = new();
        private SnapshotRef? _last;
        private SnapshotRef? _beforeLast;
        private string _disk = disk;
        private int _n;

        public async Task<CaptureResult> CaptureAsync()
        {
            string id = $"s{++_n}";
            string staging = Path.Combine(snapshots, ".staging-" + id);
            var sw = Stopwatch.StartNew();
            var result = await _capturer.CaptureAsync(
                new CaptureRequest(vm, staging, memoryFile, null, _disk, Path.Combine(dir, $"disk-{_n}.qcow2")) { Parent = _last },
                CancellationToken.None);
            string final = Path.Combine(snapshots, id);
            Directory.Move(staging, final);
            var snap = new SnapshotRef(id, final);
            _disk = result.ActiveDiskPath;
            await SnapshotCapturer.RepointActiveDiskAsync(vm, _disk, snap, CancellationToken.None);
            // Only the parent's memory.img is read by the next capture; older images are a cache (rebuilt on demand).
            if (_beforeLast is not null) File.Delete(Path.Combine(_beforeLast.Dir, SnapshotFiles.Image));
            _beforeLast = _last;
            _last = snap;
            return result;
        }
    }
}
