using Bough.Vmm;

namespace Bough.Snapshots;

/// <summary>What to capture and where.</summary>
/// <param name="Vm">The running VM (RAM must be <c>memory-backend-file,share=off</c>, as <see cref="VmLauncher"/> sets up).</param>
/// <param name="StagingDir">Empty or missing directory to write the snapshot into; the caller renames it into place
/// (as <c>&lt;snapshots&gt;/&lt;id&gt;</c>, next to its ancestors) and records it. Created if missing; must be on the
/// same filesystem as <paramref name="ActiveDiskPath"/> for the disk to be hard-linked rather than copied.</param>
/// <param name="VmMemoryFile">The file the VM maps as RAM now: the runtime dir's sparse <c>memory</c> after a fresh boot,
/// or the <c>memory.img</c> of the snapshot it was restored from.</param>
/// <param name="MemoryBase">The snapshot whose memory.img <paramref name="VmMemoryFile"/> is, or null for a fresh boot's
/// all-zero file. Pages the VM has not written since it mapped the file are taken from it.</param>
/// <param name="ActiveDiskPath">The qcow2 the VM writes to now. After the capture it is frozen (read-only backing) and
/// becomes the snapshot's disk.qcow2 by hard link; it must never be written again.</param>
/// <param name="NextDiskPath">New overlay the VM continues on (must not exist). Created here with
/// <paramref name="ActiveDiskPath"/> as backing and attached by QEMU (<c>blockdev-snapshot-sync</c>, mode existing);
/// removed again if the capture fails before the switch.</param>
public sealed record CaptureRequest(VmProcess Vm, string StagingDir, string VmMemoryFile, SnapshotRef? MemoryBase,
    string ActiveDiskPath, string NextDiskPath)
{
    /// <summary>
    /// The snapshot this one descends from, used for lineage and dedup (changed pages identical to the
    /// parent's are not stored again). Defaults to <see cref="MemoryBase"/>. Set it when a VM is captured
    /// a second time: its memory file is still the boot file, but the first snapshot is its parent.
    /// </summary>
    public SnapshotRef? Parent { get; init; }

    /// <summary>
    /// QEMU block node the VM's disk is attached through. Null: looked up (<c>query-block</c>) by
    /// <see cref="ActiveDiskPath"/>. The node changes with every capture (QEMU's new top node), which
    /// is why looking it up is the default.
    /// </summary>
    public string? DiskNodeName { get; init; }
}

/// <summary>Time spent in the steps of a capture, for diagnostics.</summary>
/// <param name="PagemapMs">In the window: the written-page scan and, for a full scan, the pagemap scan.</param>
/// <param name="CopyPagesMs">In the window: copying the pages out of QEMU.</param>
/// <param name="DeviceStateMs">Saving the device state.</param>
/// <param name="DiskSwitchMs">The disk switch.</param>
/// <param name="AfterResumeMs">Everything after <c>cont</c>: layer, header, memory.img, fsyncs.</param>
public sealed record CaptureTimings(long PagemapMs, long CopyPagesMs, long DeviceStateMs, long DiskSwitchMs, long AfterResumeMs)
{
    /// <summary>Before the VM stopped: the tracker's scan and the copy of the pages found (0 without a tracker).</summary>
    public long PreCopyMs { get; init; }

    /// <summary>Pages copied before the VM stopped; those written afterwards were copied again in the window.</summary>
    public long PreCopiedPages { get; init; }

    /// <summary>Pages copied while the VM was stopped.</summary>
    public long WindowPages { get; init; }
}

/// <summary>Outcome of a capture. The snapshot is complete in the staging directory.</summary>
/// <param name="PauseMs">How long the VM was stopped (from <c>stop</c> until <c>cont</c> returned); 0 if it was already paused.</param>
/// <param name="ChangedPages">Pages copied out of the VM: written since the previous capture (<see cref="Tracking"/> =
/// written-pages), or held privately by QEMU, i.e. written since it mapped its memory file (full-scan).</param>
/// <param name="StoredPages">Pages written into memory.layer.</param>
/// <param name="ZeroPages">Changed pages that were all zero (not stored).</param>
/// <param name="DedupedPages">Changed pages identical to the parent's (not stored).</param>
/// <param name="BytesStored">Size of memory.layer.</param>
/// <param name="FrozenDiskPath">The snapshot's disk.qcow2 (in the staging directory).</param>
/// <param name="ActiveDiskPath">The disk the VM writes to from now on (the request's NextDiskPath).</param>
/// <param name="ActiveDiskNodeName">QEMU's block node for it.</param>
/// <param name="TotalMs">Wall time of the whole capture, including the work after the VM resumed.</param>
/// <param name="Timings">Breakdown of the pause and the work after it.</param>
/// <param name="Metadata">What was written to snapshot.json.</param>
public sealed record CaptureResult(long PauseMs, long ChangedPages, long StoredPages, long ZeroPages, long DedupedPages,
    long BytesStored, string FrozenDiskPath, string ActiveDiskPath, string ActiveDiskNodeName, long TotalMs,
    CaptureTimings Timings, SnapshotMetadata Metadata)
{
    /// <summary>How the copied pages were found: <see cref="Bough.Snapshots.Tracking.CaptureMethods"/> (also in <see cref="Metadata"/>).</summary>
    public string Tracking { get; init; } = Bough.Snapshots.Tracking.CaptureMethods.FullScan;
}
