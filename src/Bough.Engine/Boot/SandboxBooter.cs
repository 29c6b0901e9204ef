using System.Diagnostics;
using Bough.Catalog;
using Bough.Contracts;
using Bough.Engine.Events;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Recovery;
using Bough.Engine.Snapshots;
using Bough.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Boot;

/// <summary>
/// Brings a sandbox's VM up: cold from an image, or from a snapshot (a child, or a paused
/// sandbox resuming). Then the agent channel and the guest's identity. One undo path: on
/// any failure the VM is stopped, its files removed, and the row removed (or, for a resume,
/// put back to <c>paused</c>: its state is intact in the pause snapshot).
/// </summary>
/// <remarks>
/// The caller holds the sandbox's lifecycle lease, and its row exists (state starting, or paused for a resume).
/// Every VM start takes a fresh unprivileged uid with its egress rules installed (<see cref="VmUids"/>), recorded in
/// the row before QEMU starts and freed, rules first, once that QEMU is gone.
/// </remarks>
internal sealed class SandboxBooter(
    IVmLauncher launcher, VmSpecFactory specs, VmUids uids, GuestChannel channel, GuestIdentity identity, IBootImages images,
    SandboxRegistry registry, SandboxStore store, EngineOptions options, EventBus events, ILogger<SandboxBooter> log)
{
    /// <summary>Cold boot from <paramref name="image"/>.</summary>
    public Task<SandboxRecord> BootAsync(LifecycleLease lease, SandboxRuntime rt, IBootImageLease image, CancellationToken ct) =>
        BootAsync(lease, rt, image, beforeIdentity: null, ct);

    /// <summary>Cold boot from <paramref name="image"/>.</summary>
    /// <param name="beforeIdentity">Runs once the agent answers and before the guest gets this sandbox's identity (a boot snapshot's capture).</param>
    public async Task<SandboxRecord> BootAsync(LifecycleLease lease, SandboxRuntime rt, IBootImageLease image,
        Func<CancellationToken, Task>? beforeIdentity, CancellationToken ct)
    {
        var disk = Path.Combine(rt.Record.RuntimeDir, "disk.qcow2");
        return await StartAsync(lease, rt, resume: false, snapshotId: null, async () =>
        {
            await launcher.CreateDiskAsync(image.DiskPath, disk, ct);
            var vm = await launcher.BootAsync(specs.For(rt.Record, disk), ct);
            return (vm, disk, rt.Record.MemoryFile, image.Config, Restored: false);
        }, beforeIdentity, ct);
    }

    /// <summary>
    /// Start from <paramref name="snap"/>. The caller holds a lease on the snapshot (so it
    /// cannot be deleted or have its memory image evicted before the VM maps it).
    /// </summary>
    public async Task<SandboxRecord> RestoreAsync(LifecycleLease lease, SandboxRuntime rt, SnapshotRecord snap, bool resume, CancellationToken ct)
    {
        var disk = Path.Combine(rt.Record.RuntimeDir, $"disk-{SnapshotNames.NewId()[3..]}.qcow2");
        var snapRef = new SnapshotRef(snap.Id, snap.Dir);
        return await StartAsync(lease, rt, resume, snap.Id, async () =>
        {
            await launcher.CreateChildDiskAsync(snapRef, disk, ct);
            var vm = await launcher.RestoreAsync(specs.For(rt.Record, disk), snapRef, ct);
            return (vm, disk, Path.Combine(snap.Dir, SnapshotFiles.Image), await images.GetConfigAsync(snap.Image, ct), Restored: true);
        }, beforeIdentity: null, ct);
    }

    private async Task<SandboxRecord> StartAsync(LifecycleLease lease, SandboxRuntime rt, bool resume, string? snapshotId,
        Func<Task<(IVm Vm, string Disk, string? MemoryFile, ImageConfig Config, bool Restored)>> launch,
        Func<CancellationToken, Task>? beforeIdentity, CancellationToken ct)
    {
        lease.EnsureHeld(rt.Id);
        var dir = rt.Record.RuntimeDir;
        var sw = Stopwatch.StartNew();
        IVm? vm = null;
        string? disk = null;
        int? uid = null;
        try
        {
            Directory.CreateDirectory(dir);
            uid = await uids.TakeAsync(rt.Record, ct);
            // Recorded before QEMU starts: the firewall is keyed by it, and a crash must not lose which uid ran.
            await rt.UpdateAsync(store, r => r with { VmUid = uid }, resume ? r => r with { State = SandboxState.Paused } : null);
            var started = await launch();
            vm = started.Vm;
            uids.ReleaseWhenGone(rt.Id, uid.Value, vm);
            disk = started.Disk;
            rt.Vm = vm;
            // A resume stays 'paused' in the catalog until it runs: a crash in between must
            // not turn a paused sandbox into an interrupted create (which recovery deletes).
            await rt.UpdateAsync(store, r => r with
            {
                Pid = vm.Pid,
                Ports = vm.Ports.Select(p => new PortRecord(p.GuestPort, p.HostPort)).ToList(),
                SnapshotId = snapshotId ?? r.SnapshotId,
                MemoryFile = started.MemoryFile,
                DiskPath = started.Disk,
            }, resume ? r => r with { State = SandboxState.Paused } : null);

            var agent = await channel.ConnectAsync(rt, vm, started.Restored, ct);
            if (beforeIdentity is not null) await beforeIdentity(ct);
            await identity.ApplyAsync(agent, rt.Id, started.Config, rt.Record.Env, ct);

            var record = await rt.UpdateAsync(store, r => r with { State = SandboxState.Running, StateReason = null });
            events.SandboxState(record);
            channel.Watch(rt, vm);
            log.LogInformation("sandbox {Id} running (pid {Pid}, {How} in {Ms} ms)", rt.Id, vm.Pid,
                started.Restored ? $"restored from {snapshotId}" : "cold boot", sw.ElapsedMilliseconds);
            return record;
        }
        catch (Exception ex)
        {
            var tail = ConsoleLog.Tail(dir, 15);
            log.LogWarning(ex, "sandbox {Id} failed to start", rt.Id);
            if (vm is null && uid is { } unused) await uids.ReleaseAsync(rt.Id, unused);
            await UndoAsync(rt, vm, disk, resume, ex);
            if (ex is OperationCanceledException && ct.IsCancellationRequested) throw;
            if (ex is BoughException { Code: ErrorCodes.CapacityExceeded }) throw; // no uid free: a 503 saying so
            throw ErrorMap.StartFailed(snapshotId is null ? "the sandbox failed to start" : $"starting from snapshot {snapshotId} failed", ex, tail);
        }
    }

    private async Task UndoAsync(SandboxRuntime rt, IVm? vm, string? disk, bool resume, Exception cause)
    {
        await channel.CloseAsync(rt);
        await StopVmAsync(rt.Id, vm, rt.Record.RuntimeDir);
        rt.Vm = null;
        if (resume)
        {
            // The pause snapshot is intact: the sandbox simply stays paused.
            if (disk is not null) TryDelete(disk);
            events.SandboxState(await rt.UpdateAsync(store, r => r with { State = SandboxState.Paused, Pid = null, MemoryFile = null, DiskPath = null,
                StateReason = $"resume failed: {cause.Message}" }));
            registry.Remove(rt);
        }
        else
        {
            registry.Remove(rt);
            await store.DeleteAsync(rt.Id, CancellationToken.None);
            events.SandboxDeleted(rt.Id, $"the start failed: {cause.Message}");
            TryDeleteDirectory(rt.Record.RuntimeDir);
        }
    }

    /// <summary>Stops a VM (graceful, then kill) or, when there is no handle, any QEMU left in its runtime dir.</summary>
    public async Task StopVmAsync(string id, IVm? vm, string runtimeDir)
    {
        if (vm is null)
        {
            await VmReaper.KillUnderAsync(runtimeDir, log);
            return;
        }
        try { await vm.StopAsync(options.StopGrace, CancellationToken.None); }
        catch (Exception ex) when (ex is not OutOfMemoryException) { log.LogWarning(ex, "stopping the VM of {Id} failed", id); }
        await vm.DisposeAsync();
    }

    private void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogDebug(ex, "delete {Path}", path); }
    }

    private void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { log.LogWarning(ex, "could not remove {Dir}", dir); }
    }
}
