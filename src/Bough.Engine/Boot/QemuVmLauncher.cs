using Bough.Snapshots;
using Bough.Vmm;
using Microsoft.Extensions.Logging;

namespace Bough.Engine.Boot;

/// <summary>The real <see cref="IVmLauncher"/>: QEMU processes, qcow2 overlays, snapshot restore.</summary>
internal sealed class QemuVmLauncher(VmLauncher launcher, ILoggerFactory loggers) : IVmLauncher
{
    private readonly ILogger _log = loggers.CreateLogger<QemuVmLauncher>();

    public Task CreateDiskAsync(string backingFile, string overlayPath, CancellationToken ct) =>
        QemuImg.CreateOverlayAsync(backingFile, overlayPath, ct);

    public Task CreateChildDiskAsync(SnapshotRef snapshot, string overlayPath, CancellationToken ct) =>
        SnapshotRestorer.CreateChildDiskAsync(snapshot, overlayPath, ct);

    public async Task<IVm> BootAsync(VmSpec spec, CancellationToken ct) =>
        new QemuVm(await launcher.StartAsync(spec, ct), _log);

    public async Task<IVm> RestoreAsync(VmSpec spec, SnapshotRef snapshot, CancellationToken ct) =>
        new QemuVm(await new SnapshotRestorer(loggers.CreateLogger<SnapshotRestorer>()).RestoreAsync(launcher, spec, snapshot, ct), _log);

    public async Task<IVm?> AdoptAsync(string runtimeDir, CancellationToken ct) =>
        await VmProcess.TryAdoptAsync(runtimeDir, loggers, ct) is { } p ? new QemuVm(p, _log) : null;

    public async Task RemoveLeftoversAsync(string cgroupParent, IReadOnlySet<string> liveVmNames, CancellationToken ct)
    {
        if (launcher.Cgroups.Version == CgroupVersion.None) return;
        // Orphans were just SIGKILLed; a cgroup empties only once the kernel has finished them.
        var busy = launcher.Cgroups.RemoveStale(cgroupParent, liveVmNames);
        for (int i = 0; i < 50 && busy.Count > 0; i++)
        {
            await Task.Delay(40, ct);
            busy = launcher.Cgroups.RemoveStale(cgroupParent, liveVmNames);
        }
        foreach (var dir in busy)
            _log.LogWarning("cgroup {Dir} belongs to no sandbox but still has processes; left in place", dir);
    }
}
