using Xunit.Abstractions;

namespace Bough.Snapshots.Tests;

[Collection("vms")]
public class CrashSafetyTests(GuestImageFixture fx, ITestOutputHelper output)
{
    private static HashSet<string> Tree(string root) =>
        Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories).ToHashSet();

    [Fact]
    public async Task A_failed_capture_leaves_the_vm_running_and_writes_nothing_outside_the_staging_dir()
    {
        await using var lab = new Lab(fx, output);
        var vm = await lab.BootAsync("crash");
        await vm.ShAsync(CaptureRestoreTests.StartCounter);
        var before = Tree(lab.Root);

        // A staging "dir" that is a file: rejected before the VM is touched.
        string notADir = Path.Combine(lab.Root, "not-a-dir");
        File.WriteAllText(notADir, "x");
        before.Add(notADir);
        string next = Path.Combine(vm.Dir, "next.qcow2");
        await Assert.ThrowsAsync<ArgumentException>(() =>
            lab.Capturer.CaptureAsync(new CaptureRequest(vm.Vm, notADir, vm.MemoryFile, null, vm.ActiveDisk, next), CancellationToken.None));
        Assert.True(await vm.IsRunningAsync());
        Assert.Equal(before, Tree(lab.Root));

        // Failures inside the pause (before the disk switch): the VM is resumed, its disk unchanged.
        foreach (string step in new[] { "stopped", "pages-copied", "device-state" })
        {
            string staging = Path.Combine(lab.SnapshotsDir, ".staging-fail-" + step);
            lab.Capturer.StepHook = s => { if (s == step) throw new IOException($"injected failure at {s}"); };
            var e = await Assert.ThrowsAsync<SnapshotCaptureException>(() =>
                lab.Capturer.CaptureAsync(new CaptureRequest(vm.Vm, staging, vm.MemoryFile, null, vm.ActiveDisk, next), CancellationToken.None));
            lab.Capturer.StepHook = null;
            Assert.False(e.DiskSwitched);
            Assert.Equal(vm.ActiveDisk, e.ActiveDiskPath);
            Assert.True(await vm.IsRunningAsync(), $"VM left stopped after a failure at {step}");
            Assert.False(File.Exists(next));
            // Only the staging dir (which the caller deletes) has new content.
            var outside = Tree(lab.Root).Except(before).Where(p => !p.StartsWith(staging, StringComparison.Ordinal)).ToList();
            Assert.True(outside.Count == 0, "written outside the staging dir: " + string.Join(", ", outside));
            Directory.Delete(staging, recursive: true);
        }
        await CaptureRestoreTests.AssertCountingAsync(vm);

        // Cancellation inside the pause: same.
        using (var cts = new CancellationTokenSource())
        {
            string staging = Path.Combine(lab.SnapshotsDir, ".staging-cancel");
            lab.Capturer.StepHook = s => { if (s == "stopped") cts.Cancel(); };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                lab.Capturer.CaptureAsync(new CaptureRequest(vm.Vm, staging, vm.MemoryFile, null, vm.ActiveDisk, next), cts.Token));
            lab.Capturer.StepHook = null;
            Assert.True(await vm.IsRunningAsync());
            Assert.False(File.Exists(next));
            Directory.Delete(staging, recursive: true);
        }

        // A failure after the disk switch says so, and names the disk the VM now writes to.
        {
            string staging = Path.Combine(lab.SnapshotsDir, ".staging-after");
            lab.Capturer.StepHook = s => { if (s == "resumed") throw new IOException("injected failure after resume"); };
            var e = await Assert.ThrowsAsync<SnapshotCaptureException>(() =>
                lab.Capturer.CaptureAsync(new CaptureRequest(vm.Vm, staging, vm.MemoryFile, null, vm.ActiveDisk, next), CancellationToken.None));
            lab.Capturer.StepHook = null;
            Assert.True(e.DiskSwitched);
            Assert.Equal(next, e.ActiveDiskPath);
            Assert.True(File.Exists(next));
            vm.ActiveDisk = next;
            Directory.Delete(staging, recursive: true);
        }
        Assert.True(await vm.IsRunningAsync());
        await vm.ShAsync("echo still-writable > /root/after-failures; sync");
        await CaptureRestoreTests.AssertCountingAsync(vm);

        // The VM is still capturable, and the result restores.
        var (snap, result) = await lab.CaptureAsync(vm, "ok");
        Assert.True(result.StoredPages > 0);
        await lab.StopAsync(vm);
        var child = await lab.RestoreAsync("crash-child", snap);
        Assert.Equal("still-writable", await child.ShAsync("cat /root/after-failures"));
        await CaptureRestoreTests.AssertCountingAsync(child);
    }

    [Fact]
    public async Task A_failed_restore_leaves_no_qemu_behind()
    {
        await using var lab = new Lab(fx, output);
        var vm = await lab.BootAsync("rsrc");
        var (snap, _) = await lab.CaptureAsync(vm, "good");
        await lab.StopAsync(vm);

        // Same snapshot, but the device state is cut short.
        string brokenDir = Path.Combine(lab.SnapshotsDir, "broken");
        Directory.CreateDirectory(brokenDir);
        foreach (string f in Directory.GetFiles(snap.Dir))
            File.Copy(f, Path.Combine(brokenDir, Path.GetFileName(f)));
        string state = Path.Combine(brokenDir, SnapshotFiles.DeviceState);
        File.WriteAllBytes(state, File.ReadAllBytes(state)[..100]);
        var broken = new SnapshotRef("broken", brokenDir);

        string dir = Path.Combine(lab.Root, "rbad");
        Directory.CreateDirectory(dir);
        string disk = Path.Combine(dir, "disk.qcow2");
        await SnapshotRestorer.CreateChildDiskAsync(broken, disk, CancellationToken.None);
        var spec = new Bough.Vmm.VmSpec
        {
            Name = "rbad", RuntimeDir = dir, KernelPath = fx.Kernel.KernelPath, InitrdPath = fx.Kernel.InitrdPath,
            KernelCmdline = fx.Kernel.CommandLine, DiskPath = disk, Accel = "tcg", Internet = false,
            Confinement = new Bough.Vmm.VmConfinement(1_900_049_999, 1_900_049_999),
        };
        var e = await Assert.ThrowsAsync<SnapshotException>(() => lab.Restorer.RestoreAsync(lab.Launcher, spec, broken, CancellationToken.None));
        lab.Log("restore of a truncated device state: " + e.Message);
        Assert.Empty(Bough.Vmm.VmProcessScanner.FindQemuProcessesUnder(dir));

        // The intact snapshot still restores.
        var child = await lab.RestoreAsync("rgood", snap);
        Assert.Equal("ok", await child.ShAsync("echo ok"));
    }
}
