using System.Diagnostics;
using Bough.Snapshots.Tracking;
using Bough.Vmm;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bough.Snapshots;

/// <summary>
/// Captures a running VM into a snapshot directory at a cost (and pause) proportional to the memory the
/// VM has written since its previous capture, and lets it continue.
/// </summary>
/// <remarks>
/// Which pages are copied (<see cref="CaptureTracking"/>): those written since the previous capture of this VM when its
/// <see cref="VmProcess.WriteTracker"/> started tracking at exactly the capture's parent (the snapshot is then a layer
/// over the parent), else every page QEMU holds privately (a layer over the memory base, as without tracking).
/// Everything that can be checked is checked before the VM stops. Inside the pause (<see cref="StopWindow"/>)
/// only what must be consistent happens: the written-page or pagemap scan, copying the changed, non-zero pages out of QEMU
/// (<c>/proc/PID/mem</c>, into process memory or the staging dir's page cache, unsynced), the device state and
/// the disk switch. After <c>cont</c> (<see cref="LayerWriter"/>): dedup against the parent, the header,
/// memory.img, fsyncs and snapshot.json (written last: its presence means complete). Nothing is written outside
/// the staging directory except the new overlay at NextDiskPath (deleted again when the capture fails before
/// the disk switch).
/// </remarks>
public sealed class SnapshotCapturer
{
    private const int PageSize = GuestRamMapping.PageSize;
    private readonly ILogger _log;

    /// <summary>Default for how much of the copied guest memory is held in process memory before spilling to a file.</summary>
    public const long DefaultMaxBufferedBytes = 1L << 30;
    private readonly long _maxBufferedBytes;

    /// <param name="logger">Optional logger.</param>
    /// <param name="maxBufferedBytes">
    /// Changed pages are copied out of the stopped VM into process memory (a memcpy cannot stall, a page-cache
    /// write can) up to this many bytes per capture, the rest into a spill file in the staging directory.
    /// The memory is released when the capture returns.
    /// </param>
    public SnapshotCapturer(ILogger<SnapshotCapturer>? logger = null, long maxBufferedBytes = DefaultMaxBufferedBytes)
    {
        _log = (ILogger?)logger ?? NullLogger.Instance;
        _maxBufferedBytes = maxBufferedBytes;
    }

    /// <summary>Test hook: called after each step ("pre-copied", "stopped", "pages-copied", "device-state", "disk-switched", "resumed"); may throw to inject a failure.</summary>
    internal Action<string>? StepHook { get; set; }

    public async Task<CaptureResult> CaptureAsync(CaptureRequest r, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(r.Vm);
        var total = Stopwatch.StartNew();
        string staging = Path.GetFullPath(r.StagingDir);
        string activeDisk = Path.GetFullPath(r.ActiveDiskPath);
        string nextDisk = Path.GetFullPath(r.NextDiskPath);
        SnapshotRef? parent = r.Parent ?? r.MemoryBase;

        // ---- everything that can be checked is checked before the VM stops
        r.MemoryBase?.ValidateLayout();
        parent?.ValidateLayout();
        if (r.MemoryBase is not null && parent is not null &&
            r.MemoryBase.SiblingDir("x") != parent.SiblingDir("x"))
            throw new ArgumentException("MemoryBase and Parent must live in the same snapshots directory.", nameof(r));
        if (!File.Exists(activeDisk)) throw new ArgumentException($"Active disk {activeDisk} does not exist.", nameof(r));
        if (File.Exists(nextDisk) || Directory.Exists(nextDisk)) throw new ArgumentException($"Next disk {nextDisk} already exists.", nameof(r));
        if (!Directory.Exists(Path.GetDirectoryName(nextDisk))) throw new ArgumentException($"Directory of next disk {nextDisk} does not exist.", nameof(r));
        PrepareStaging(staging);

        var mapping = GuestRamMapping.Find(r.Vm.Pid, r.VmMemoryFile);
        var baseMeta = r.MemoryBase is null ? null : SnapshotMetadata.Read(r.MemoryBase.Dir);
        var parentMeta = parent is null ? null : SnapshotMetadata.Read(parent.Dir);
        foreach (var m in new[] { baseMeta, parentMeta })
            if (m is not null && m.PageCount != mapping.PageCount)
                throw new ArgumentException($"The VM has {mapping.PageCount} pages of RAM but a base/parent snapshot has {m.PageCount}.", nameof(r));
        QmpClient qmp = r.Vm.Qmp;
        BlockDeviceInfo disk = await FindDiskAsync(qmp, r.DiskNodeName, activeDisk, ct).ConfigureAwait(false);
        int vcpus = await qmp.QueryVcpuCountAsync(ct).ConfigureAwait(false);
        long ramBytes = await qmp.QueryBaseMemoryBytesAsync(ct).ConfigureAwait(false);
        if (ramBytes != mapping.Length)
            throw new ArgumentException($"{r.VmMemoryFile} is mapped with {mapping.Length} bytes but the VM has {ramBytes} bytes of RAM; it is not the VM's RAM file.", nameof(r));
        bool running = (await qmp.QueryStatusAsync(ct).ConfigureAwait(false)).Running;
        string accel = ReadAccel(r.Vm.Pid);

        // The new overlay is created here, not by QEMU (mode "existing"): its header then names the plain
        // path of the frozen overlay as backing, whatever pseudo-filename QEMU uses for that node.
        try
        {
            await QemuImg.CreateOverlayOfImageInUseAsync(activeDisk, nextDisk, disk.VirtualSize!.Value, ct).ConfigureAwait(false);
        }
        catch (QemuImgException e)
        {
            throw new SnapshotException($"Could not create the next overlay {nextDisk}: {e.Message}", e);
        }

        // With a write tracker, most pages are copied now, while the VM runs, right before it stops; the window
        // copies what is written after.
        using var tracking = CaptureTracking.Begin(r.Vm, mapping, parent, parentMeta);
        using var pages = new CopiedPages(_maxBufferedBytes, Path.Combine(staging, SnapshotFiles.Layer + ".spill"));
        long preCopyMs;
        try
        {
            var preCopy = Stopwatch.StartNew();
            tracking.PreCopy(mapping, pages, ct);
            preCopyMs = preCopy.ElapsedMilliseconds;
            StepHook?.Invoke("pre-copied");
        }
        catch
        {
            StopWindow.TryDelete(nextDisk);
            throw;
        }

        string devicePath = Path.Combine(staging, SnapshotFiles.DeviceState);
        string nextNode = "snap" + Guid.NewGuid().ToString("N")[..24];
        var plan = new StopWindowPlan(r.Vm, running, mapping, devicePath, disk.NodeName!, activeDisk, nextDisk, nextNode, tracking);
        StopWindowTimings window = await StopWindow.RunAsync(plan, pages, StepHook, _log, ct).ConfigureAwait(false);
        tracking.Log(_log, r.Vm.Pid, pages.ChangedCount);
        await CloseSpentDescriptorsAsync(qmp, nextDisk).ConfigureAwait(false);

        // ---- the VM runs again; the rest only touches the staging directory
        try
        {
            var after = Stopwatch.StartNew();
            StepHook?.Invoke("resumed");
            string frozen = Path.Combine(staging, SnapshotFiles.Disk);
            if (!NativeFs.TryHardLink(activeDisk, frozen)) File.Copy(activeDisk, frozen);
            NativeFs.FSyncPath(frozen);

            // The copied pages go over what the VM's memory was made of: the parent (written pages) or the memory base.
            SnapshotRef? layerBase = tracking.LayeredOn ?? r.MemoryBase;
            string baseImage = tracking.LayeredOn is { } on ? MemoryImage.Ensure(on) : Path.GetFullPath(r.VmMemoryFile);
            var header = LayerWriter.WriteLayer(mapping.PageCount, layerBase, parent, pages, staging, out long stored, out long deduped);
            header.Write(Path.Combine(staging, SnapshotFiles.Header));
            LayerWriter.WriteImage(baseImage, mapping.Length, pages, Path.Combine(staging, SnapshotFiles.Image));
            pages.Dispose();
            NativeFs.FSyncPath(devicePath);

            var meta = new SnapshotMetadata
            {
                MemoryMiB = (int)(mapping.Length >> 20),
                Vcpus = vcpus,
                Accel = accel,
                PageCount = mapping.PageCount,
                ChangedPages = pages.ChangedCount,
                StoredPages = stored,
                ZeroPages = pages.Zero.Count,
                DedupedPages = deduped,
                BytesStored = stored * PageSize,
                NonZeroPages = header.CountNonZero(),
                PauseMs = window.PauseMs,
                Tracking = tracking.Method,
                CaptureToken = tracking.Token,
                ParentId = parent?.Id,
                AncestorIds = parent is null ? [] : [parent.Id, .. parentMeta!.AncestorIds],
                LayerIds = header.AncestorLayers,
                CreatedAt = DateTimeOffset.UtcNow,
            };
            meta.Write(staging);
            NativeFs.FSyncPath(staging, directory: true);
            // Complete: the next capture of this VM may be a layer over this one (if the caller publishes it as its parent).
            tracking.Commit();
            long afterMs = after.ElapsedMilliseconds;
            _log.LogInformation(
                "Captured QEMU PID {Pid} ({Tracking}): paused {PauseMs} ms, {Changed} changed pages, {Stored} stored, {Zero} zero, {Deduped} deduped",
                r.Vm.Pid, tracking.Method, window.PauseMs, pages.ChangedCount, stored, pages.Zero.Count, deduped);
            return new CaptureResult(window.PauseMs, pages.ChangedCount, stored, pages.Zero.Count, deduped, stored * PageSize,
                frozen, nextDisk, nextNode, total.ElapsedMilliseconds,
                new CaptureTimings(window.PagemapMs, window.CopyPagesMs, window.DeviceStateMs, window.DiskSwitchMs, afterMs)
                {
                    PreCopyMs = preCopyMs,
                    PreCopiedPages = pages.PreCopiedCount,
                    WindowPages = pages.WindowCount,
                }, meta)
            {
                Tracking = tracking.Method,
            };
        }
        catch (Exception e)
        {
            throw new SnapshotCaptureException($"Capture of QEMU PID {r.Vm.Pid} failed after the disk switch: {e.Message}", true, nextDisk, e);
        }
    }

    /// <summary>
    /// After the caller has published a snapshot of <paramref name="vm"/>, rewrites the backing-file name in
    /// the header of the VM's current overlay (<paramref name="activeDiskPath"/>) from the frozen overlay's
    /// old path (in the sandbox's runtime dir) to the published snapshot's <c>disk.qcow2</c> (the same
    /// inode, by hard link). Without this, the next snapshot of this VM would have a disk chain that runs
    /// through the sandbox's runtime dir and breaks when the sandbox is deleted. QEMU's open image is not
    /// reopened (QMP <c>change-backing-file</c> only rewrites the header and QEMU's strings).
    /// </summary>
    /// <exception cref="SnapshotException">The overlay's backing file is not the published snapshot's disk.</exception>
    public static async Task RepointActiveDiskAsync(VmProcess vm, string activeDiskPath, SnapshotRef published, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(published);
        string active = Path.GetFullPath(activeDiskPath);
        string target = Path.GetFullPath(Path.Combine(published.Dir, SnapshotFiles.Disk));
        var devices = await vm.Qmp.QueryBlockAsync(ct).ConfigureAwait(false);
        BlockDeviceInfo disk = devices.FirstOrDefault(d => d.File == active && d.NodeName is not null)
                               ?? throw new SnapshotException($"The VM has no disk {active}.");
        // The node actually attached as backing (QEMU's strings for it may be json: pseudo-filenames).
        string backing = disk.BackingChain.Count > 0 ? disk.BackingChain[0] : "";
        if (backing.Length == 0 || !File.Exists(backing) || NativeFs.Identity(backing) != NativeFs.Identity(target))
            throw new SnapshotException($"The backing file of {active} is '{backing}', not the frozen disk of snapshot {published.Id}.");
        await vm.Qmp.ChangeBackingFileAsync(disk.NodeName!, target, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The device-state file and the now frozen disk were handed to QEMU as descriptors; it keeps only read-only
    /// ones of frozen images. Best effort: the capture itself has succeeded.
    /// </summary>
    private async Task CloseSpentDescriptorsAsync(QmpClient qmp, string activeDisk)
    {
        try
        {
            await qmp.CloseSpentDescriptorsAsync(activeDisk, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is QmpException or QmpDisconnectedException or InvalidDataException or IOException)
        {
            _log.LogWarning(e, "Could not close the descriptors QEMU no longer needs after the capture");
        }
    }

    private static void PrepareStaging(string staging)
    {
        if (File.Exists(staging)) throw new ArgumentException($"Staging path {staging} is a file.");
        Directory.CreateDirectory(staging);
        if (Directory.EnumerateFileSystemEntries(staging).Any())
            throw new ArgumentException($"Staging directory {staging} is not empty.");
    }

    /// <summary>The block device whose image file is <paramref name="activeDisk"/> (on node <paramref name="requestedNode"/> if given).</summary>
    private static async Task<BlockDeviceInfo> FindDiskAsync(QmpClient qmp, string? requestedNode, string activeDisk, CancellationToken ct)
    {
        var devices = await qmp.QueryBlockAsync(ct).ConfigureAwait(false);
        BlockDeviceInfo? disk = devices.FirstOrDefault(d =>
            d.File == activeDisk && d.NodeName is not null && (requestedNode is null || requestedNode == d.NodeName));
        if (disk is null)
        {
            string seen = string.Join(", ", devices.Where(d => d.IsInserted).Select(d => $"{d.NodeName}={d.File}"));
            throw new ArgumentException($"The VM's disk is not {activeDisk}{(requestedNode is null ? "" : $" on node {requestedNode}")} (it has: {seen}).");
        }
        if (disk.VirtualSize is not > 0) throw new SnapshotException($"QEMU reports no virtual size for {activeDisk}.");
        return disk;
    }

    /// <summary>The accelerator the VM runs under (<c>-accel</c> in its command line); empty if unknown.</summary>
    private static string ReadAccel(int pid)
    {
        try
        {
            var argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            int i = Array.IndexOf(argv, "-accel");
            if (i >= 0 && i + 1 < argv.Length) return argv[i + 1].Split(',')[0];
        }
        catch (IOException) { }
        return "";
    }
}
