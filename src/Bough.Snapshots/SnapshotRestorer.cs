using System.Diagnostics;
using Bough.Vmm;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Snapshots;

/// <summary>
/// Starts a VM from a snapshot: RAM mapped <c>share=off</c> over the snapshot's memory.img (pages the
/// child does not write stay shared with every other child in the host page cache), the device state
/// loaded as an incoming migration with no RAM section, and a disk overlay backed by the snapshot's
/// frozen disk.
/// </summary>
public sealed class SnapshotRestorer
{
    private static readonly TimeSpan IncomingTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// x-ignore-shared: the RAM is the mapped memory.img, not part of the stream (xen-save-devices-state wrote
    /// none); events: MIGRATION events wake <see cref="WaitIncomingAsync"/> instead of polling alone.
    /// </summary>
    private static readonly Dictionary<string, bool> MigrationCapabilities = new(StringComparer.Ordinal)
    {
        ["x-ignore-shared"] = true,
        ["events"] = true,
    };
    private readonly ILogger _log;

    public SnapshotRestorer(ILogger<SnapshotRestorer>? logger = null) => _log = (ILogger?)logger ?? NullLogger.Instance;

    /// <summary>How long the last successful <see cref="RestoreAsync"/> took (launch to running), for diagnostics.</summary>
    public long LastRestoreMs { get; private set; }

    /// <summary>
    /// Creates <paramref name="overlayPath"/>: a new, empty qcow2 whose backing file is the snapshot's
    /// frozen disk (by absolute path; the snapshot directory must not move while children exist).
    /// </summary>
    public static async Task CreateChildDiskAsync(SnapshotRef snapshot, string overlayPath, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        string backing = Path.GetFullPath(Path.Combine(snapshot.Dir, SnapshotFiles.Disk));
        if (!File.Exists(backing)) throw new SnapshotException($"Snapshot {snapshot.Id} has no {SnapshotFiles.Disk}.");
        try
        {
            await QemuImg.CreateOverlayAsync(backing, overlayPath, ct).ConfigureAwait(false);
        }
        catch (QemuImgException e)
        {
            throw new SnapshotException($"Could not create a disk for a child of snapshot {snapshot.Id}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Launches the VM described by <paramref name="spec"/> from <paramref name="snapshot"/> and returns it
    /// running. The caller fills name, runtime dir, kernel, disk (an overlay from <see cref="CreateChildDiskAsync"/>),
    /// accel, ports and network; memory size and vCPUs are taken from the snapshot (they must match the
    /// saved state), and <c>MemoryFile</c>/<c>ExtraArgs</c> are set here. The kernel, initrd and command line
    /// must be the ones the snapshot's VM booted with (they are reloaded but the guest does not re-read them).
    /// On failure the new QEMU is stopped.
    /// </summary>
    /// <remarks>
    /// The guest is a copy: same RNG state, clock, hostname and agent session as the source. Connect a
    /// new agent connection to the child's agent.sock (the guest agent resets its session on HELLO) and
    /// reconfigure clock, entropy and identity before relying on them.
    /// </remarks>
    public async Task<VmProcess> RestoreAsync(VmLauncher launcher, VmSpec spec, SnapshotRef snapshot, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(launcher);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(snapshot);
        var sw = Stopwatch.StartNew();
        var meta = SnapshotMetadata.Read(snapshot.Dir);
        if (!string.IsNullOrEmpty(meta.Accel) && meta.Accel != spec.Accel)
            throw new ArgumentException($"Snapshot {snapshot.Id} was taken under {meta.Accel}; it cannot be restored with {spec.Accel}.");
        string deviceState = Path.GetFullPath(Path.Combine(snapshot.Dir, SnapshotFiles.DeviceState));
        if (!File.Exists(deviceState)) throw new SnapshotException($"Snapshot {snapshot.Id} has no {SnapshotFiles.DeviceState}.");
        string image = Path.GetFullPath(MemoryImage.Ensure(snapshot));

        var childSpec = spec with
        {
            MemoryMiB = meta.MemoryMiB,
            Vcpus = meta.Vcpus,
            MemoryFile = image,
            ExtraArgs =
            [
                .. spec.ExtraArgs,
                // -S: stay paused after the state is loaded, so we resume explicitly once it is complete.
                "-S",
                "-incoming", "defer",
                // xen-save-devices-state writes no configuration section; don't expect one.
                "-global", "migration.send-configuration=off",
            ],
        };

        var vm = await launcher.StartAsync(childSpec, ct).ConfigureAwait(false);
        try
        {
            var qmp = vm.Qmp;
            using var events = qmp.SubscribeEvents();
            await qmp.SetMigrationCapabilitiesAsync(MigrationCapabilities, ct).ConfigureAwait(false);
            // The device state goes to QEMU as an open descriptor: no shell, no quoting.
            await qmp.MigrateIncomingFromFileAsync(deviceState, ct).ConfigureAwait(false);
            await WaitIncomingAsync(qmp, events, ct).ConfigureAwait(false);
            await qmp.ContAsync(ct).ConfigureAwait(false);
            var status = await qmp.QueryStatusAsync(ct).ConfigureAwait(false);
            if (!status.Running)
                throw new SnapshotException($"VM restored from {snapshot.Id} is not running after cont (status {status.Status}).");
            LastRestoreMs = sw.ElapsedMilliseconds;
            _log.LogInformation("Restored {Name} from snapshot {Id} in {Ms} ms (PID {Pid})", spec.Name, snapshot.Id, LastRestoreMs, vm.Pid);
            return vm;
        }
        catch (Exception e)
        {
            _log.LogWarning(e, "Restore of {Name} from snapshot {Id} failed; stopping its QEMU", spec.Name, snapshot.Id);
            try { await vm.StopAsync(StopGrace, CancellationToken.None).ConfigureAwait(false); }
            catch (Exception stopError) { _log.LogError(stopError, "Could not stop QEMU PID {Pid}", vm.Pid); }
            await vm.DisposeAsync().ConfigureAwait(false);
            if (e is OperationCanceledException or SnapshotException) throw;
            throw new SnapshotException($"Restore from snapshot {snapshot.Id} failed: {e.Message} (console: {vm.ConsoleLogPath})", e);
        }
    }

    /// <summary>Waits for the incoming migration to end: MIGRATION events, with query-migrate polling as a fallback.</summary>
    private static async Task WaitIncomingAsync(QmpClient qmp, QmpEventSubscription events, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(IncomingTimeout);
        try
        {
            while (true)
            {
                string status = await qmp.QueryMigrationStatusAsync(timeout.Token).ConfigureAwait(false);
                if (status == "completed") return;
                if (status is "failed" or "cancelled")
                    throw new SnapshotException($"Loading the device state failed (migration status {status}).");
                // Wake on the next MIGRATION event, or re-poll after a short while.
                var next = events.Reader.WaitToReadAsync(timeout.Token).AsTask();
                await Task.WhenAny(next, Task.Delay(50, timeout.Token)).ConfigureAwait(false);
                while (events.Reader.TryRead(out var ev))
                {
                    if (!ev.TryGetMigrationStatus(out string st)) continue;
                    if (st == "completed") return;
                    if (st is "failed" or "cancelled")
                        throw new SnapshotException($"Loading the device state failed (migration status {st}).");
                }
                if (qmp.Disconnected.IsCompleted) throw new SnapshotException("QEMU exited while loading the device state.");
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new SnapshotException($"Loading the device state did not finish within {IncomingTimeout.TotalSeconds} s.");
        }
        catch (QmpDisconnectedException e)
        {
            // QEMU exits when the incoming stream does not load (truncated, or from another QEMU/machine).
            throw new SnapshotException("QEMU exited while loading the device state (corrupt device.state, or taken with a different QEMU or machine configuration).", e);
        }
    }
}
