using Bough.Engine.Boot;
using Bough.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Capture;

/// <summary>What a capture needs: where to write, the VM's memory origin, its disks and the lineage parent.</summary>
/// <param name="StagingDir">Where the snapshot's files go (renamed into place by the publisher).</param>
/// <param name="VmMemoryFile">The file the VM's RAM maps privately.</param>
/// <param name="MemoryBase">The snapshot that file belongs to (null: a cold boot's sparse file).</param>
/// <param name="ActiveDiskPath">The overlay the VM writes to now; frozen by the capture.</param>
/// <param name="NextDiskPath">The new overlay the VM continues on.</param>
/// <param name="Parent">Lineage parent, for dedup.</param>
public sealed record CaptureInput(string StagingDir, string VmMemoryFile, SnapshotRef? MemoryBase,
    string ActiveDiskPath, string NextDiskPath, SnapshotRef? Parent);

/// <summary>What the engine keeps of a capture: how long the VM was stopped and what was stored.</summary>
public sealed record CaptureOutcome(long PauseMs, long BytesStored);

/// <summary>
/// Captures a running VM into a staging directory. The seam between the engine and
/// <see cref="SnapshotCapturer"/>. Failures after the disk switch are
/// <see cref="SnapshotCaptureException"/> with <c>DiskSwitched</c> set: the VM then writes to
/// <c>ActiveDiskPath</c> of the exception, and the catalog must say so.
/// </summary>
public interface ISnapshotCapturer
{
    Task<CaptureOutcome> CaptureAsync(IVm vm, CaptureInput input, CancellationToken ct);

    /// <summary>Points the VM's new overlay at the published snapshot's disk (same inode) instead of the runtime dir's name for it.</summary>
    Task RepointActiveDiskAsync(IVm vm, string activeDiskPath, SnapshotRef published, CancellationToken ct);
}

/// <summary>The real <see cref="ISnapshotCapturer"/> over QEMU.</summary>
internal sealed class QemuSnapshotCapturer(ILoggerFactory loggers) : ISnapshotCapturer
{
    public async Task<CaptureOutcome> CaptureAsync(IVm vm, CaptureInput input, CancellationToken ct)
    {
        var result = await new SnapshotCapturer(loggers.CreateLogger<SnapshotCapturer>()).CaptureAsync(
            new CaptureRequest(Qemu(vm), input.StagingDir, input.VmMemoryFile, input.MemoryBase, input.ActiveDiskPath, input.NextDiskPath)
            {
                Parent = input.Parent,
            }, ct);
        return new CaptureOutcome(result.PauseMs, result.BytesStored);
    }

    public Task RepointActiveDiskAsync(IVm vm, string activeDiskPath, SnapshotRef published, CancellationToken ct) =>
        SnapshotCapturer.RepointActiveDiskAsync(Qemu(vm), activeDiskPath, published, ct);

    private static Bough.Vmm.VmProcess Qemu(IVm vm) =>
        (vm as QemuVm)?.Process ?? throw new InvalidOperationException("the QEMU capturer needs a QEMU VM");
}
