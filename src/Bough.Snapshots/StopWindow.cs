using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Bough.Snapshots.Tracking;
using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Snapshots;

/// <summary>What the stopped part of a capture works on; all checked before the VM stops.</summary>
/// <param name="Vm">The VM.</param>
/// <param name="WasRunning">The VM runs now (else it is left paused and never resumed here).</param>
/// <param name="Mapping">Its RAM mapping.</param>
/// <param name="DeviceStatePath">Where the device state goes (in the staging directory).</param>
/// <param name="DiskNode">The block node of <paramref name="ActiveDisk"/>.</param>
/// <param name="ActiveDisk">The overlay the VM writes to now; frozen by the switch.</param>
/// <param name="NextDisk">The new overlay (already created, backed by <paramref name="ActiveDisk"/>).</param>
/// <param name="NextNode">QEMU node name for <paramref name="NextDisk"/>.</param>
/// <param name="Tracking">Finds the pages to copy: written since the pre-copy, or all QEMU holds.</param>
internal sealed record StopWindowPlan(VmProcess Vm, bool WasRunning, GuestRamMapping Mapping, string DeviceStatePath,
    string DiskNode, string ActiveDisk, string NextDisk, string NextNode, CaptureTracking Tracking);

/// <summary>How long the VM was stopped and what each step inside took, in milliseconds.</summary>
internal sealed record StopWindowTimings(long PauseMs, long PagemapMs, long CopyPagesMs, long DeviceStateMs, long DiskSwitchMs);

/// <summary>
/// The part of a capture during which the VM is stopped: <c>stop</c>, the written-page or pagemap scan and page copy, the
/// device state, the disk switch (last, so any earlier failure leaves the disk untouched), and <c>cont</c> in a
/// finally block: a failed capture never leaves the VM stopped.
/// </summary>
internal static class StopWindow
{
    private static readonly TimeSpan ContTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Runs the window; <paramref name="hook"/> is called after each step (tests inject failures there).</summary>
    /// <exception cref="SnapshotCaptureException">A step failed; the VM runs again. <see cref="SnapshotCaptureException.DiskSwitched"/>
    /// says which overlay it writes to; before the switch the new overlay has been deleted.</exception>
    /// <exception cref="OperationCanceledException">Cancelled before the disk switch; the VM runs again, nothing changed.</exception>
    public static async Task<StopWindowTimings> RunAsync(StopWindowPlan plan, CopiedPages pages, Action<string>? hook,
        ILogger log, CancellationToken ct)
    {
        QmpClient qmp = plan.Vm.Qmp;
        long pagemapMs = 0, copyMs = 0, deviceMs = 0, diskMs = 0, pauseMs = 0;
        bool stopped = false, diskSwitched = false;
        var pause = new Stopwatch();
        Exception? failure = null;
        try
        {
            if (plan.WasRunning)
            {
                pause.Start();
                stopped = true; // set before the call: if it is cancelled QEMU may still stop
                await qmp.StopAsync(ct).ConfigureAwait(false);
            }
            hook?.Invoke("stopped");
            var step = Stopwatch.StartNew();
            var (changed, late) = plan.Tracking.FindChangedPages(plan.Mapping);
            pagemapMs = step.ElapsedMilliseconds;
            step.Restart();
            if (late)
            {
                pages.CollectLate(plan.Mapping, changed, ct);
            }
            else
            {
                pages.Reset();
                pages.Collect(plan.Mapping, changed, ct);
            }
            copyMs = step.ElapsedMilliseconds;
            hook?.Invoke("pages-copied");
            step.Restart();
            await qmp.SaveDeviceStateAsync(plan.DeviceStatePath, ct).ConfigureAwait(false);
            deviceMs = step.ElapsedMilliseconds;
            hook?.Invoke("device-state");
            step.Restart();
            // Last step inside the pause: from here the VM writes to NextDisk, and ActiveDisk is frozen.
            ct.ThrowIfCancellationRequested();
            await qmp.BlockdevSnapshotSyncAsync(plan.DiskNode, plan.NextDisk, plan.NextNode, CancellationToken.None).ConfigureAwait(false);
            diskSwitched = true;
            diskMs = step.ElapsedMilliseconds;
            hook?.Invoke("disk-switched");
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            if (stopped)
            {
                try
                {
                    await qmp.ContAsync(CancellationToken.None).WaitAsync(ContTimeout, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    log.LogError(e, "Could not resume QEMU PID {Pid} after a capture", plan.Vm.Pid);
                    failure = failure is null ? e : new AggregateException(failure, e);
                }
                pause.Stop();
                pauseMs = pause.ElapsedMilliseconds;
            }
        }
        if (failure is not null)
        {
            if (!diskSwitched) TryDelete(plan.NextDisk);
            if (failure is OperationCanceledException && ct.IsCancellationRequested && !diskSwitched)
                ExceptionDispatchInfo.Capture(failure).Throw();
            throw new SnapshotCaptureException(
                $"Capture of QEMU PID {plan.Vm.Pid} failed{(diskSwitched ? " after the disk switch" : "")}: {failure.Message}",
                diskSwitched, diskSwitched ? plan.NextDisk : plan.ActiveDisk, failure);
        }
        return new StopWindowTimings(pauseMs, pagemapMs, copyMs, deviceMs, diskMs);
    }

    /// <summary>Deletes a file if it can (the new overlay of a capture that failed before the disk switch).</summary>
    internal static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
