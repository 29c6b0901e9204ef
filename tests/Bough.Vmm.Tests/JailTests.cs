using System.Globalization;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Bough.Vmm.Tests;

/// <summary>
/// A confined VM (real QEMU under TCG): it runs as its own uid under seccomp in its own cgroups, its runtime dir is in
/// a directory only root may enter, and files it gets after start-up (device state, a new overlay) reach it as
/// descriptors. Then the cgroup goes with the VM.
/// </summary>
[Collection(VmGroup.Name)]
public sealed class JailTests(GuestFixture guest, ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("jail");
    private readonly ILoggerFactory _lf = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new XunitLoggerProvider(output)));

    public void Dispose()
    {
        foreach (int pid in VmProcessScanner.FindQemuProcessesUnder(_dir.Path))
            Native.SendSignal(pid, null, Native.SIGKILL);
        _lf.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task ConfinedVm_RunsAsItsUid_UnderSeccomp_InItsCgroup_AndTakesFilesAsDescriptors()
    {
        var tree = CgroupTree.Detect();
        Assert.NotEqual(CgroupVersion.None, tree.Version);

        // The data dir stand-in: 0700 root, so the jailed QEMU can open nothing in it by path.
        string privateDir = Path.Combine(_dir.Path, "private");
        Directory.CreateDirectory(privateDir);
        File.SetUnixFileMode(privateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string dir = Path.Combine(privateDir, "vm");
        Directory.CreateDirectory(dir);

        int uid = 1_900_000_000 + Random.Shared.Next(60_000, 65_000);
        string parent = "bough-test-" + Guid.NewGuid().ToString("N")[..8];
        var limits = new CgroupLimits(400L << 20, 1, 128);
        var spec = guest.Spec(dir, "sb-jail") with
        {
            Confinement = new VmConfinement(uid, uid) { Limits = limits, CgroupParent = parent },
        };
        var vm = await new VmLauncher(_lf).StartAsync(spec, CancellationToken.None);
        try
        {
            var status = ProcStatus(vm.Pid);
            Assert.Equal($"{uid}\t{uid}\t{uid}\t{uid}", status["Uid"]);
            Assert.Equal($"{uid}\t{uid}\t{uid}\t{uid}", status["Gid"]);
            Assert.Equal("2", status["Seccomp"]);
            Assert.Equal("0000000000000000", status["CapEff"]);

            var cgroups = tree.DirectoriesOf(parent, "sb-jail");
            Assert.Equal(cgroups, vm.CgroupDirectories);
            foreach (string cg in cgroups)
                Assert.Contains(vm.Pid.ToString(CultureInfo.InvariantCulture), File.ReadAllLines(Path.Combine(cg, "cgroup.procs")));
            if (tree.Version == CgroupVersion.V1)
            {
                Assert.Equal((400L << 20).ToString(CultureInfo.InvariantCulture), Read(cgroups[0], "memory.limit_in_bytes"));
                Assert.Equal("100000", Read(cgroups[1], "cpu.cfs_quota_us"));
                Assert.Equal("128", Read(cgroups[2], "pids.max"));
            }
            else
            {
                Assert.Equal((400L << 20).ToString(CultureInfo.InvariantCulture), Read(cgroups[0], "memory.max"));
                Assert.Equal("128", Read(cgroups[0], "pids.max"));
            }

            await WaitForConsoleAsync(vm, GuestFixture.ReadyMarker);

            // After start-up QEMU gets files only as descriptors: the device state and a new overlay.
            await vm.Qmp.StopAsync(CancellationToken.None);
            string state = Path.Combine(dir, "device.state");
            await vm.Qmp.SaveDeviceStateAsync(state, CancellationToken.None);
            Assert.True(new FileInfo(state).Length > 1000);
            string disk = Path.Combine(dir, "disk.qcow2"), next = Path.Combine(dir, "disk-2.qcow2");
            await QemuImg.CreateOverlayAsync(disk, next, CancellationToken.None);
            File.SetUnixFileMode(next, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            await vm.Qmp.BlockdevSnapshotSyncAsync("root", next, "snap1", CancellationToken.None);
            await vm.Qmp.ContAsync(CancellationToken.None);
            await vm.Qmp.CloseSpentDescriptorsAsync(next, CancellationToken.None);
            // QEMU knows the overlay as /dev/fdset/N; query-block names it by its path.
            var top = (await vm.Qmp.QueryBlockAsync(CancellationToken.None)).Single(d => d.IsInserted);
            Assert.Equal(next, top.File);
            Assert.Equal(disk, top.BackingChain[0]);
            Assert.Equal(next, await vm.Qmp.ActiveDiskFileAsync(CancellationToken.None));
            // The frozen disk was reopened read-only from its fd set and QEMU holds no way to write it any more (nor
            // the write lock that would keep a child from opening it as a backing file); the device state is closed.
            Assert.All(OpenModes(vm.Pid, disk), m => Assert.Equal("ro", m));
            Assert.Contains("rw", OpenModes(vm.Pid, next));
            Assert.Empty(OpenModes(vm.Pid, state));
            Assert.True((await vm.Qmp.QueryStatusAsync(CancellationToken.None)).Running);

            await vm.StopAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
            Assert.All(cgroups, cg => Assert.False(Directory.Exists(cg), $"{cg} left behind"));
        }
        finally
        {
            await vm.StopAsync(TimeSpan.FromSeconds(1), CancellationToken.None);
            await vm.DisposeAsync();
            tree.RemoveStale(parent, new HashSet<string>());
            foreach (string p in tree.DirectoriesOf(parent, "x").Select(d => Path.GetDirectoryName(d)!))
                if (Directory.Exists(p)) Directory.Delete(p);
        }
    }

    [Fact]
    public async Task ConsoleFlood_KeepsTheLogUnderItsCap_WithTheNewestLinesInOrder()
    {
        const long cap = 256 * 1024;
        const int lines = 60_000; // ~350 KB: the emulated UART sends 10 to 60 KB/s
        string dir = Path.Combine(_dir.Path, "flood");
        Directory.CreateDirectory(dir);
        var spec = guest.Spec(dir, "sb-flood") with
        {
            ConsoleLogMaxBytes = cap,
            KernelCmdline = GuestFixture.KernelCmdline + " bough_flood=" + lines.ToString(CultureInfo.InvariantCulture),
        };
        var vm = await new VmLauncher(_lf).StartAsync(spec, CancellationToken.None);
        try
        {
            long largest = 0;
            string text = "";
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
            while (!text.Contains(GuestFixture.FloodDone, StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline && !vm.Exited.IsCompleted, "the flood did not finish");
                largest = Math.Max(largest, new FileInfo(vm.ConsoleLogPath).Length);
                await Task.Delay(50);
                text = await File.ReadAllTextAsync(vm.ConsoleLogPath);
            }
            output.WriteLine($"largest console.log seen: {largest} bytes");
            // Checked every 250 ms and cut once within an eighth of the cap: a UART cannot fill that in one check.
            Assert.InRange(largest, cap / 2, cap);
            // What is kept is the newest output, whole and in order.
            var kept = text.Replace("\r", "", StringComparison.Ordinal).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Skip(1).TakeWhile(l => l != GuestFixture.FloodDone).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(lines, kept[^1]);
            Assert.True(kept[0] > 1, "the head was not cut");
            Assert.Equal(Enumerable.Range(kept[0], kept.Count), kept);
        }
        finally
        {
            await vm.StopAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
            await vm.DisposeAsync();
        }
    }

    /// <summary>How QEMU has <paramref name="path"/> open: "ro", "wo" or "rw" per descriptor.</summary>
    private static List<string> OpenModes(int pid, string path) =>
        Directory.GetFiles($"/proc/{pid}/fd")
            .Where(fd => new FileInfo(fd).LinkTarget == path)
            .Select(fd => File.ReadAllLines($"/proc/{pid}/fdinfo/{Path.GetFileName(fd)}").First(l => l.StartsWith("flags:", StringComparison.Ordinal)))
            .Select(l => (Convert.ToInt32(l["flags:".Length..].Trim(), 8) & 3) switch { 0 => "ro", 1 => "wo", _ => "rw" })
            .ToList();

    private static Dictionary<string, string> ProcStatus(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").Select(l => l.Split(':', 2))
            .ToDictionary(p => p[0], p => p[1].Trim(), StringComparer.Ordinal);

    private static string Read(string dir, string file) => File.ReadAllText(Path.Combine(dir, file)).Trim();

    private static async Task WaitForConsoleAsync(VmProcess vm, string marker)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            string text = File.Exists(vm.ConsoleLogPath) ? await File.ReadAllTextAsync(vm.ConsoleLogPath) : "";
            if (text.Contains(marker, StringComparison.Ordinal)) return;
            if (DateTime.UtcNow > deadline || vm.Exited.IsCompleted)
                Assert.Fail($"'{marker}' not on console (exited={vm.Exited.IsCompleted}). Console:\n{text}");
            await Task.Delay(100);
        }
    }
}
