using Bough.Catalog;
using Bough.Engine.Boot;
using Bough.Engine.Guest;
using Bough.Engine.Lifecycle;
using Bough.Engine.Snapshots;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Recovery;

/// <summary>
/// Reconciles the catalog with reality after a (re)start: adopts VMs that are still alive,
/// marks the rest dead with a reason, finishes interrupted creates and deletes, removes
/// unpublished snapshot directories, kills any QEMU under the sandboxes directory that no
/// row accounts for, and collects snapshots nothing needs any more.
/// </summary>
internal sealed class StartupRecovery(
    EngineOptions options, SandboxRegistry registry, SandboxStore store, SnapshotStore snapshots, IVmLauncher launcher,
    GuestChannel channel, SnapshotFilesystem files, SnapshotGc gc, VmUids uids, VmSpecFactory specs,
    ILogger<StartupRecovery> log)
{
    public async Task RecoverAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(options.SandboxesDir);
        uids.ClaimRange(); // before touching any VM: a second daemon on this uid range stops here
        var adopted = new HashSet<int>();
        var live = new HashSet<string>(StringComparer.Ordinal);
        var jailed = new List<SandboxRecord>();
        foreach (var row in await store.ListAsync(ct))
        {
            switch (row.State)
            {
                case SandboxState.Starting or SandboxState.Stopping:
                    // An interrupted create (the caller never got a sandbox) or delete: remove every
                    // trace. (A resume keeps its row 'paused' until it runs, so it never lands here.)
                    await VmReaper.KillUnderAsync(row.RuntimeDir, log);
                    files.TryDeleteDirectory(row.RuntimeDir);
                    await store.DeleteAsync(row.Id, ct);
                    log.LogWarning("removed sandbox {Id}: its {Operation} was interrupted by a daemon restart", row.Id,
                        row.State == SandboxState.Starting ? "creation" : "deletion");
                    break;
                case SandboxState.Paused:
                    // Its state is in the pause snapshot; a VM still running here is a leftover of a
                    // pause interrupted after the snapshot was published.
                    await VmReaper.KillUnderAsync(row.RuntimeDir, log);
                    break;
                case SandboxState.Running:
                    if (await AdoptAsync(row, ct) is { } pid)
                    {
                        adopted.Add(pid);
                        live.Add(row.Id);
                        if (uids.Adopt(row, registry.Get(row.Id)!.Vm!)) jailed.Add(row);
                    }
                    break;
            }
        }
        // Before anything else runs: the adopted VMs get their rules back, a crash's leftovers go.
        await uids.ReconcileAsync(jailed, ct);
        files.RemoveUnpublished(await snapshots.ListAsync(ct));
        VmReaper.KillOrphans(options.SandboxesDir, adopted, log);
        await launcher.RemoveLeftoversAsync(specs.CgroupParent, live, ct);
        await gc.CollectAsync();
    }

    private async Task<int?> AdoptAsync(SandboxRecord row, CancellationToken ct)
    {
        var vm = await launcher.AdoptAsync(row.RuntimeDir, ct);
        if (vm is null)
        {
            await store.SetStateAsync(row.Id, SandboxState.Dead,
                $"its VM (pid {row.Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"}) was gone when the daemon restarted", ct);
            log.LogWarning("sandbox {Id} is dead: VM gone across daemon restart", row.Id);
            return null;
        }
        // A daemon killed inside a capture leaves the VM stopped and maybe on a newer overlay
        // than the row says: re-read its disk, then let it run.
        var disk = TrustedDisk(row, await TryAsync(() => vm.ActiveDiskAsync(ct), row.Id, "query the disk of"));
        if (await TryAsync(async () => (bool?)await vm.EnsureRunningAsync(ct), row.Id, "check the run state of") == true)
            log.LogWarning("sandbox {Id} was left stopped (interrupted capture?); continued it", row.Id);
        var adoptedRow = row with { Pid = vm.Pid, DiskPath = disk ?? row.DiskPath };
        if (adoptedRow != row) await store.UpdateAsync(adoptedRow, ct);
        var rt = new SandboxRuntime(adoptedRow) { Vm = vm };
        await using (var lease = await registry.AcquireAsync(row.Id, SandboxOperation.Create, wait: null, ct))
            registry.Set(lease, rt);
        channel.Watch(rt, vm);
        log.LogInformation("adopted sandbox {Id} (pid {Pid})", row.Id, vm.Pid);
        return vm.Pid;
    }

    /// <summary>
    /// The disk QEMU reports, only when it is a path in the sandbox's own directory: QEMU is untrusted, and an image
    /// it was handed as a descriptor is <c>/dev/fdset/N</c> to it. Otherwise the recorded path stands.
    /// </summary>
    internal static string? TrustedDisk(SandboxRecord row, string? reported)
    {
        if (reported is null || !Path.IsPathFullyQualified(reported)) return row.DiskPath;
        var full = Path.GetFullPath(reported);
        var dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(row.RuntimeDir)) + "/";
        return full.StartsWith(dir, StringComparison.Ordinal) ? full : row.DiskPath;
    }

    private async Task<T?> TryAsync<T>(Func<Task<T?>> query, string id, string what)
    {
        try { return await query(); }
        catch (Exception ex) when (ex is Vmm.QmpException or IOException or InvalidOperationException or InvalidDataException)
        {
            log.LogWarning(ex, "could not {What} sandbox {Id}", what, id);
            return default;
        }
    }
}
