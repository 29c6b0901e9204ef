using Bough.Snapshots;
using Bough.Vmm;

namespace Bough.Engine.Boot;

/// <summary>Starts, restores and adopts VMs, and makes their disks. The engine's only way to get an <see cref="IVm"/>.</summary>
public interface IVmLauncher
{
    /// <summary>Creates a copy-on-write disk for a new VM over a read-only backing file.</summary>
    Task CreateDiskAsync(string backingFile, string overlayPath, CancellationToken ct);

    /// <summary>Creates a copy-on-write disk over a snapshot's frozen disk layer.</summary>
    Task CreateChildDiskAsync(SnapshotRef snapshot, string overlayPath, CancellationToken ct);

    /// <summary>Cold-boots a VM.</summary>
    Task<IVm> BootAsync(VmSpec spec, CancellationToken ct);

    /// <summary>Starts a VM from a snapshot's memory and device state.</summary>
    Task<IVm> RestoreAsync(VmSpec spec, SnapshotRef snapshot, CancellationToken ct);

    /// <summary>Takes over a VM a previous daemon left running in <paramref name="runtimeDir"/>; null if none is alive.</summary>
    Task<IVm?> AdoptAsync(string runtimeDir, CancellationToken ct);

    /// <summary>
    /// Start-up, after orphaned VMs are killed: removes host resources (cgroups under <paramref name="cgroupParent"/>)
    /// of VMs not named in <paramref name="liveVmNames"/>. Launchers that make none have nothing to do.
    /// </summary>
    Task RemoveLeftoversAsync(string cgroupParent, IReadOnlySet<string> liveVmNames, CancellationToken ct) => Task.CompletedTask;
}
