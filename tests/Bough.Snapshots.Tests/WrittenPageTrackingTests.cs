using Bough.Snapshots.Tracking;
using Bough.Vmm;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Bough.Snapshots.Tests;

/// <summary>
/// Captures that copy only the pages written since the previous capture hold exactly the VM's memory: each capture's
/// snapshot is compared byte for byte with the guest RAM read inside its own stop window (<see cref="RamOracle"/>),
/// through a chain of captures, failed captures, a capture whose parent is not the previous one, a daemon restart
/// (adoption) and a restore; and the restored guest has the files the source had.
/// </summary>
[Collection("vms")]
public class WrittenPageTrackingTests(GuestImageFixture fx, ITestOutputHelper output)
{
    /// <summary>A guest process that keeps rewriting a tmpfs file, so pages change right up to every stop.</summary>
    private const string StartScribbler =
        "setsid sh -c 'while true; do head -c 65536 /dev/urandom > /dev/shm/scribble; done' >/dev/null 2>&1 &";

    private static async Task<CaptureResult> CaptureCheckedAsync(Lab lab, TestVm vm, string id, string expected, Func<Task>? beforeStop = null)
    {
        var oracle = new RamOracle();
        oracle.Watch(lab.Capturer, vm, beforeStop);
        var (snap, result) = await lab.CaptureAsync(vm, id);
        lab.Capturer.StepHook = null;
        lab.Log($"{id}: {result.Tracking}, {result.ChangedPages} pages copied ({result.Timings.PreCopiedPages} before the stop, in " +
                $"{result.Timings.PreCopyMs} ms; {result.Timings.WindowPages} in the window), QEMU held {oracle.PrivatePages} privately");
        Assert.Equal(expected, result.Tracking);
        Assert.Equal(expected, SnapshotMetadata.Read(snap.Dir).Tracking);
        oracle.AssertHolds(snap);
        // With a tracker most pages are copied before the stop; the window copies what was written since (the guest
        // keeps writing, so only a large capture shows it reliably).
        Assert.True(beforeStop is not null || result.ChangedPages < 2000 || result.Timings.WindowPages < result.ChangedPages / 2,
            $"{result.Timings.WindowPages} of {result.ChangedPages} pages were copied in the window");
        if (expected == CaptureMethods.WrittenPages)
            Assert.True(result.ChangedPages < oracle.PrivatePages, "a written-pages capture copied as much as a full scan");
        return result;
    }

    /// <summary>A capture that fails at <paramref name="step"/> (after a scan: its written pages must not be lost).</summary>
    private static async Task FailCaptureAsync(Lab lab, TestVm vm, string step)
    {
        string staging = Path.Combine(lab.SnapshotsDir, ".staging-fail-" + RamOracle.Token());
        lab.Capturer.StepHook = s => { if (s == step) throw new IOException($"injected failure at {s}"); };
        string next = vm.NewDiskPath();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => lab.Capturer.CaptureAsync(
            new CaptureRequest(vm.Vm, staging, vm.MemoryFile, vm.MemoryBase, vm.ActiveDisk, next) { Parent = vm.LastSnapshot },
            CancellationToken.None));
        lab.Capturer.StepHook = null;
        Assert.Equal(e is SnapshotCaptureException { DiskSwitched: true }, File.Exists(next));
        Assert.True(e is SnapshotCaptureException || (e is IOException && step == "pre-copied"), e.ToString());
        if (e is SnapshotCaptureException { DiskSwitched: true } switched) vm.ActiveDisk = switched.ActiveDiskPath;
        Directory.Delete(staging, recursive: true);
        Assert.True(await vm.IsRunningAsync());
    }

    [Fact]
    public async Task Captures_copy_only_written_pages_and_hold_exactly_the_vms_memory_through_failures_and_other_parents()
    {
        await using var lab = new Lab(fx, output);
        var vm = await lab.BootAsync("wt");
        Assert.True(vm.Vm.WriteTracker.IsArmed, vm.Vm.WriteTracker.Status);
        await vm.ShAsync(CaptureRestoreTests.StartCounter);
        await vm.ShAsync(StartScribbler);

        // The first capture of a VM has no baseline: everything QEMU holds. It becomes the baseline.
        var c1 = await CaptureCheckedAsync(lab, vm, "c1", CaptureMethods.FullScan);
        var first = vm.LastSnapshot!;

        // Pages written right before the capture.
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/a", 8);
        var c2 = await CaptureCheckedAsync(lab, vm, "c2", CaptureMethods.WrittenPages);
        Assert.True(c2.ChangedPages >= 2048, $"8 MiB were written but only {c2.ChangedPages} pages copied");
        Assert.Equal("c1", c2.Metadata.ParentId);
        Assert.Contains("c1", c2.Metadata.LayerIds);

        // Many captures in a row, with and without writes between them.
        await CaptureCheckedAsync(lab, vm, "c3", CaptureMethods.WrittenPages);
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/b", 2);
        await CaptureCheckedAsync(lab, vm, "c4", CaptureMethods.WrittenPages);
        await vm.ShAsync("rm /dev/shm/a");
        await CaptureCheckedAsync(lab, vm, "c5", CaptureMethods.WrittenPages);

        // Failed captures after a scan: before the VM stopped (after the pre-copy), inside the window, and after the VM
        // resumed. Pages written before them (and never again) must reach the next capture.
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/c", 4);
        await FailCaptureAsync(lab, vm, "pre-copied");
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/d", 4);
        await FailCaptureAsync(lab, vm, "device-state");
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/e", 4);
        await FailCaptureAsync(lab, vm, "resumed");
        await CaptureCheckedAsync(lab, vm, "c6", CaptureMethods.WrittenPages);

        // Pages written after the pre-copy, right before the VM stops, are copied in the window.
        await CaptureCheckedAsync(lab, vm, "c6b", CaptureMethods.WrittenPages,
            beforeStop: () => RamOracle.WriteRandomAsync(vm, "/dev/shm/late", 4));

        // A capture whose parent is not the tracker's baseline (e.g. the previous one was never published): full scan.
        vm.LastSnapshot = first;
        await CaptureCheckedAsync(lab, vm, "c7", CaptureMethods.FullScan);
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/f", 1);
        await CaptureCheckedAsync(lab, vm, "c8", CaptureMethods.WrittenPages);
        Assert.True(c1.ChangedPages > 0);
    }

    [Fact]
    public async Task After_an_adoption_and_after_a_restore_the_first_capture_scans_everything_and_tracking_resumes()
    {
        await using var lab = new Lab(fx, output);
        var vm = await lab.BootAsync("ad");
        await vm.ShAsync(CaptureRestoreTests.StartCounter);
        await vm.ShAsync(StartScribbler);
        await CaptureCheckedAsync(lab, vm, "a1", CaptureMethods.FullScan);
        await RamOracle.WriteRandomAsync(vm, "/dev/shm/x", 4);

        // The daemon restarts: the VM keeps running, a new daemon adopts it. What the old one knew is gone.
        await vm.Vm.DisposeAsync();
        vm.Vm = await VmProcess.TryAdoptAsync(vm.Dir, NullLoggerFactory.Instance, CancellationToken.None)
                ?? throw new InvalidOperationException("adoption failed");
        Assert.True(vm.Vm.WriteTracker.IsArmed, vm.Vm.WriteTracker.Status);
        await CaptureCheckedAsync(lab, vm, "a2", CaptureMethods.FullScan);
        string y = await RamOracle.WriteRandomAsync(vm, "/dev/shm/y", 4);
        string x = await RamOracle.GuestHashAsync(vm, "/dev/shm/x");
        await CaptureCheckedAsync(lab, vm, "a3", CaptureMethods.WrittenPages);
        var last = vm.LastSnapshot!;
        await lab.StopAsync(vm);

        // A VM restored from a chain of written-page layers has the source's memory; its own first capture scans
        // everything it holds (its memory file is the snapshot), then it tracks too.
        var child = await lab.RestoreAsync("ch", last);
        Assert.Equal(x, await RamOracle.GuestHashAsync(child, "/dev/shm/x"));
        Assert.Equal(y, await RamOracle.GuestHashAsync(child, "/dev/shm/y"));
        await CaptureRestoreTests.AssertCountingAsync(child);
        await CaptureCheckedAsync(lab, child, "r1", CaptureMethods.FullScan);
        await RamOracle.WriteRandomAsync(child, "/dev/shm/z", 4);
        await CaptureCheckedAsync(lab, child, "r2", CaptureMethods.WrittenPages);
    }
}
