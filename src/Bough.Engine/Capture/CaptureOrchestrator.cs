using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Lifecycle;
using Bough.Engine.Snapshots;
using Bough.Snapshots;
using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Capture;

/// <summary>
/// Captures a running sandbox into a new published snapshot: lineage, the capturer's stop
/// window, the disk switch recorded, publish (staging → rename → row), then the new overlay
/// re-pointed at the published disk. The sandbox keeps running on a fresh overlay.
/// </summary>
/// <remarks>The caller holds the sandbox's lifecycle lease and a capture slot.</remarks>
internal sealed class CaptureOrchestrator(
    ISnapshotCapturer capturer, SnapshotStore snapshots, SandboxStore sandboxes, SnapshotFilesystem files,
    ILogger<CaptureOrchestrator> log)
{
    public async Task<SnapshotRecord> CaptureAsync(LifecycleLease lease, SandboxRuntime rt, string? tag, SnapshotKind kind,
        bool keep, CancellationToken ct)
    {
        lease.EnsureHeld(rt.Id);
        var source = rt.Record;
        var vm = rt.Vm ?? throw BoughException.NotRunning($"sandbox {rt.Id} has no VM");
        var id = SnapshotNames.NewId();
        tag ??= SnapshotNames.AutoTag(source.Id, id);
        if (await snapshots.GetByTagAsync(tag, ct) is not null)
            throw new BoughException(ErrorCodes.TagExists, $"tag '{tag}' is already used by another snapshot");

        // Lineage parent: this sandbox's previous snapshot, else the snapshot it started from.
        var previous = (await snapshots.ListAsync(ct)).LastOrDefault(s => s.SourceSandboxId == source.Id && s.Kind != SnapshotKind.Compacted);
        var parentId = previous?.Id ?? source.SnapshotId;
        var parent = parentId is null ? null : await snapshots.GetAsync(parentId, ct);
        var memoryOrigin = source.SnapshotId is null ? null : await snapshots.GetAsync(source.SnapshotId, ct);

        var staging = files.NewStagingDir(id);
        var nextDisk = Path.Combine(source.RuntimeDir, $"disk-{id}.qcow2");
        var activeDisk = source.DiskPath ?? Path.Combine(source.RuntimeDir, "disk.qcow2");
        CaptureOutcome outcome;
        try
        {
            outcome = await capturer.CaptureAsync(vm, new CaptureInput(staging,
                VmMemoryFile: source.MemoryFile ?? Path.Combine(source.RuntimeDir, "memory"),
                MemoryBase: memoryOrigin is null ? null : new SnapshotRef(memoryOrigin.Id, memoryOrigin.Dir),
                ActiveDiskPath: activeDisk, NextDiskPath: nextDisk,
                Parent: parent is null ? null : new SnapshotRef(parent.Id, parent.Dir)), ct);
        }
        catch (Exception ex)
        {
            files.TryDeleteDirectory(staging);
            // The VM may already write to a new overlay (the capture failed after the disk
            // switch): the catalog must say so, or every later capture freezes the wrong file.
            if (ex is SnapshotCaptureException { DiskSwitched: true } switched)
                await RecordDiskAsync(rt, switched.ActiveDiskPath);
            if (ex is OperationCanceledException && ct.IsCancellationRequested) throw;
            throw ErrorMap.CaptureFailed(source.Id, ex);
        }

        // The VM now writes to nextDisk: record that before anything else.
        await RecordDiskAsync(rt, nextDisk);

        var record = new SnapshotRecord
        {
            Id = id, Tag = tag, ParentId = parent?.Id, SourceSandboxId = source.Id,
            Depth = (parent?.Depth ?? 0) + 1, Kind = kind, Image = source.Image,
            Vcpus = source.Vcpus, MemoryMiB = source.MemoryMiB,
            MemoryBytes = outcome.BytesStored,
            DiskBytes = SnapshotFilesystem.FileSize(Path.Combine(staging, SnapshotFiles.Disk)),
            PauseMs = outcome.PauseMs, Keep = keep,
            Dir = files.DirFor(id), CreatedAt = DateTimeOffset.UtcNow,
        };
        try
        {
            record = await files.PublishAsync(staging, record);
        }
        catch (TagTakenException ex)
        {
            throw new BoughException(ErrorCodes.TagExists, ex.Message, ex);
        }

        // The running VM's new overlay names the frozen disk by its runtime-dir path; point it at
        // the published snapshot's (same inode) so the sandbox's disk chain no longer runs
        // through a file that only its runtime dir holds, then drop that extra name.
        try
        {
            await capturer.RepointActiveDiskAsync(vm, nextDisk, new SnapshotRef(record.Id, record.Dir), CancellationToken.None);
            if (!string.Equals(Path.GetFullPath(activeDisk), Path.GetFullPath(Path.Combine(record.Dir, SnapshotFiles.Disk)), StringComparison.Ordinal))
                File.Delete(activeDisk);
        }
        catch (Exception ex) when (ex is SnapshotException or QmpException or IOException)
        {
            log.LogWarning(ex, "could not repoint the disk of {Id} at snapshot {Snapshot}; keeping {Disk}", source.Id, record.Id, activeDisk);
        }
        return record;
    }

    private Task<SandboxRecord> RecordDiskAsync(SandboxRuntime rt, string disk) => rt.UpdateAsync(sandboxes, r => r with { DiskPath = disk });
}
