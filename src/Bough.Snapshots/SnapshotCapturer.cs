using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bough.Vmm;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

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
public sealed record CaptureTimings(long PagemapMs, long CopyPagesMs, long DeviceStateMs, long DiskSwitchMs, long AfterResumeMs);

/// <summary>Outcome of a capture. The snapshot is complete in the staging directory.</summary>
/// <param name="PauseMs">How long the VM was stopped (from <c>stop</c> until <c>cont</c> returned); 0 if it was already paused.</param>
/// <param name="ChangedPages">Pages the QEMU process held privately (written since it mapped its memory file).</param>
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
    CaptureTimings Timings, SnapshotMetadata Metadata);

/// <summary>
/// Captures a running VM into a snapshot directory at a cost (and pause) proportional to the memory the
/// VM has written, and lets it continue.
/// </summary>
/// <remarks>
/// Inside the pause (<c>stop</c> … <c>cont</c>) only what must be consistent happens: the pagemap scan,
/// copying the changed, non-zero pages out of QEMU (<c>/proc/PID/mem</c>, into the staging dir's page
/// cache, unsynced), the device state (<c>xen-save-devices-state</c>) and the disk switch
/// (<c>blockdev-snapshot-sync</c>, last, so any earlier failure leaves the disk untouched). <c>cont</c>
/// runs in a finally block: a failed capture never leaves the VM stopped. After <c>cont</c>: dedup against
/// the parent, the header, memory.img, fsyncs and snapshot.json (written last: its presence means complete).
/// Nothing is written outside the staging directory except the new overlay at NextDiskPath (deleted again when
/// the capture fails before the disk switch).
/// </remarks>
public sealed class SnapshotCapturer
{
    private const int PageSize = GuestRamMapping.PageSize;
    private const int MaxRunPages = 256;
    private static readonly TimeSpan ContTimeout = TimeSpan.FromSeconds(30);
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

    /// <summary>Test hook: called after each step ("stopped", "pages-copied", "device-state", "disk-switched", "resumed"); may throw to inject a failure.</summary>
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
            throw new ArgumentException("MemoryBase and Parent must live in the same snapshots directory.");
        if (!File.Exists(activeDisk)) throw new ArgumentException($"Active disk {activeDisk} does not exist.", nameof(r));
        if (File.Exists(nextDisk) || Directory.Exists(nextDisk)) throw new ArgumentException($"Next disk {nextDisk} already exists.", nameof(r));
        if (!Directory.Exists(Path.GetDirectoryName(nextDisk))) throw new ArgumentException($"Directory of next disk {nextDisk} does not exist.", nameof(r));
        PrepareStaging(staging);

        var mapping = GuestRamMapping.Find(r.Vm.Pid, r.VmMemoryFile);
        var baseMeta = r.MemoryBase is null ? null : SnapshotMetadata.Read(r.MemoryBase.Dir);
        var parentMeta = parent is null ? null : SnapshotMetadata.Read(parent.Dir);
        foreach (var m in new[] { baseMeta, parentMeta })
            if (m is not null && m.PageCount != mapping.PageCount)
                throw new ArgumentException($"The VM has {mapping.PageCount} pages of RAM but a base/parent snapshot has {m.PageCount}.");
        var (diskNode, diskSize) = await ResolveDiskNodeAsync(r.Vm.Qmp, r.DiskNodeName, activeDisk, ct).ConfigureAwait(false);
        int vcpus = (await r.Vm.Qmp.ExecuteAsync("query-cpus-fast", null, ct).ConfigureAwait(false)).GetArrayLength();
        var memSummary = await r.Vm.Qmp.ExecuteAsync("query-memory-size-summary", null, ct).ConfigureAwait(false);
        if (memSummary.TryGetProperty("base-memory", out var baseMem) && baseMem.GetInt64() != mapping.Length)
            throw new ArgumentException($"{r.VmMemoryFile} is mapped with {mapping.Length} bytes but the VM has {baseMem.GetInt64()} bytes of RAM; it is not the VM's RAM file.");
        var status = await r.Vm.Qmp.ExecuteAsync("query-status", null, ct).ConfigureAwait(false);
        bool running = status.TryGetProperty("running", out var rn) && rn.GetBoolean();
        string accel = ReadAccel(r.Vm.Pid);
        // The new overlay is created here, not by QEMU (mode "existing"): its header then names the plain
        // path of the frozen overlay as backing, whatever pseudo-filename QEMU uses for that node.
        await QemuImg.RunAsync(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", activeDisk, "-u", nextDisk,
            diskSize.ToString(CultureInfo.InvariantCulture)], ct).ConfigureAwait(false);

        using var pages = new PageBuffer(_maxBufferedBytes, Path.Combine(staging, SnapshotFiles.Layer + ".spill"));
        string devicePath = Path.Combine(staging, SnapshotFiles.DeviceState);
        string newNode = "snap" + Guid.NewGuid().ToString("N")[..24];
        var candidates = new List<long>(); // non-zero changed pages, in buffer order
        var zeroChanged = new List<long>();
        long changedCount = 0, pagemapMs = 0, copyMs = 0, deviceMs = 0, diskMs = 0, pauseMs = 0;
        bool stopped = false, diskSwitched = false;
        var pause = new Stopwatch();
        Exception? failure = null;
        try
        {
            if (running)
            {
                pause.Start();
                stopped = true; // set before the call: if it is cancelled QEMU may still stop
                await r.Vm.Qmp.ExecuteAsync("stop", null, ct).ConfigureAwait(false);
            }
            StepHook?.Invoke("stopped");
            var step = Stopwatch.StartNew();
            var changed = mapping.ChangedPages();
            changedCount = changed.Count;
            pagemapMs = step.ElapsedMilliseconds;
            step.Restart();
            CopyChangedPages(mapping, changed, pages, candidates, zeroChanged, ct);
            copyMs = step.ElapsedMilliseconds;
            StepHook?.Invoke("pages-copied");
            step.Restart();
            await r.Vm.Qmp.ExecuteAsync("xen-save-devices-state",
                new Dictionary<string, object> { ["filename"] = devicePath, ["live"] = false }, ct).ConfigureAwait(false);
            deviceMs = step.ElapsedMilliseconds;
            StepHook?.Invoke("device-state");
            step.Restart();
            // Last step inside the pause: from here the VM writes to nextDisk, and activeDisk is frozen.
            ct.ThrowIfCancellationRequested();
            await r.Vm.Qmp.ExecuteAsync("blockdev-snapshot-sync", new Dictionary<string, object>
            {
                ["node-name"] = diskNode,
                ["snapshot-file"] = nextDisk,
                ["snapshot-node-name"] = newNode,
                ["format"] = "qcow2",
                ["mode"] = "existing",
            }, CancellationToken.None).ConfigureAwait(false);
            diskSwitched = true;
            diskMs = step.ElapsedMilliseconds;
            StepHook?.Invoke("disk-switched");
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
                    await r.Vm.Qmp.ExecuteAsync("cont", null, CancellationToken.None).WaitAsync(ContTimeout, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    _log.LogError(e, "Could not resume QEMU PID {Pid} after a capture", r.Vm.Pid);
                    failure = failure is null ? e : new AggregateException(failure, e);
                }
                pause.Stop();
                pauseMs = pause.ElapsedMilliseconds;
            }
        }
        if (failure is not null)
        {
            if (!diskSwitched) TryDelete(nextDisk);
            if (failure is OperationCanceledException && ct.IsCancellationRequested && !diskSwitched) throw failure;
            throw new SnapshotCaptureException($"Capture of QEMU PID {r.Vm.Pid} failed{(diskSwitched ? " after the disk switch" : "")}: {failure.Message}",
                diskSwitched, diskSwitched ? nextDisk : activeDisk, failure);
        }

        // ---- the VM runs again; the rest only touches the staging directory
        try
        {
            var after = Stopwatch.StartNew();
            StepHook?.Invoke("resumed");
            string frozen = Path.Combine(staging, SnapshotFiles.Disk);
            if (!NativeFs.TryHardLink(activeDisk, frozen)) File.Copy(activeDisk, frozen);
            NativeFs.FSyncPath(frozen);

            var header = BuildHeader(mapping.PageCount, r.MemoryBase, parent, candidates, zeroChanged, pages, staging,
                out long stored, out long deduped);
            header.Write(Path.Combine(staging, SnapshotFiles.Header));
            WriteImage(Path.GetFullPath(r.VmMemoryFile), mapping.Length, pages, candidates, zeroChanged, Path.Combine(staging, SnapshotFiles.Image));
            pages.Dispose();
            NativeFs.FSyncPath(devicePath);

            var meta = new SnapshotMetadata
            {
                MemoryMiB = (int)(mapping.Length >> 20),
                Vcpus = vcpus,
                Accel = accel,
                PageCount = mapping.PageCount,
                ChangedPages = changedCount,
                StoredPages = stored,
                ZeroPages = zeroChanged.Count,
                DedupedPages = deduped,
                BytesStored = stored * PageSize,
                NonZeroPages = header.CountNonZero(),
                PauseMs = pauseMs,
                ParentId = parent?.Id,
                AncestorIds = parent is null ? [] : [parent.Id, .. parentMeta!.AncestorIds],
                LayerIds = header.AncestorLayers,
                CreatedAt = DateTimeOffset.UtcNow,
            };
            meta.Write(staging);
            NativeFs.FSyncPath(staging, directory: true);
            long afterMs = after.ElapsedMilliseconds;
            _log.LogInformation(
                "Captured QEMU PID {Pid}: paused {PauseMs} ms, {Changed} changed pages, {Stored} stored, {Zero} zero, {Deduped} deduped",
                r.Vm.Pid, pauseMs, changedCount, stored, zeroChanged.Count, deduped);
            return new CaptureResult(pauseMs, changedCount, stored, zeroChanged.Count, deduped, stored * PageSize,
                frozen, nextDisk, newNode, total.ElapsedMilliseconds,
                new CaptureTimings(pagemapMs, copyMs, deviceMs, diskMs, afterMs), meta);
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
        var blocks = await vm.Qmp.ExecuteAsync("query-block", null, ct).ConfigureAwait(false);
        foreach (var b in blocks.EnumerateArray())
        {
            if (!b.TryGetProperty("inserted", out var ins) || ImageFileOf(ins) != active) continue;
            string node = ins.GetProperty("node-name").GetString()!;
            // The node actually attached as backing (QEMU's strings for it may be json: pseudo-filenames).
            string backing = ins.TryGetProperty("image", out var img) && img.TryGetProperty("backing-image", out var bi) &&
                             bi.TryGetProperty("filename", out var bfn) ? PlainFile(bfn.GetString() ?? "") : "";
            if (backing.Length == 0 || !File.Exists(backing) || NativeFs.Identity(backing) != NativeFs.Identity(target))
                throw new SnapshotException($"The backing file of {active} is '{backing}', not the frozen disk of snapshot {published.Id}.");
            await vm.Qmp.ExecuteAsync("change-backing-file", new Dictionary<string, object>
            {
                ["device"] = node,
                ["image-node-name"] = node,
                ["backing-file"] = target,
            }, ct).ConfigureAwait(false);
            return;
        }
        throw new SnapshotException($"The VM has no disk {active}.");
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static void PrepareStaging(string staging)
    {
        if (File.Exists(staging)) throw new ArgumentException($"Staging path {staging} is a file.");
        Directory.CreateDirectory(staging);
        if (Directory.EnumerateFileSystemEntries(staging).Any())
            throw new ArgumentException($"Staging directory {staging} is not empty.");
    }

    /// <summary>The block node whose image file is <paramref name="activeDisk"/> (checked against <paramref name="requested"/> if given), and its virtual size.</summary>
    internal static async Task<(string Node, long VirtualSize)> ResolveDiskNodeAsync(QmpClient qmp, string? requested, string activeDisk, CancellationToken ct)
    {
        var blocks = await qmp.ExecuteAsync("query-block", null, ct).ConfigureAwait(false);
        var seen = new List<string>();
        foreach (var b in blocks.EnumerateArray())
        {
            if (!b.TryGetProperty("inserted", out var ins)) continue;
            string node = ins.TryGetProperty("node-name", out var n) ? n.GetString() ?? "" : "";
            string file = ImageFileOf(ins);
            seen.Add($"{node}={file}");
            if (file == activeDisk && (requested is null || requested == node))
            {
                long size = ins.TryGetProperty("image", out var img) && img.TryGetProperty("virtual-size", out var vs) ? vs.GetInt64() : 0;
                if (size <= 0) throw new SnapshotException($"QEMU reports no virtual size for {activeDisk}.");
                return (node, size);
            }
        }
        throw new ArgumentException($"The VM's disk is not {activeDisk}{(requested is null ? "" : $" on node {requested}")} (it has: {string.Join(", ", seen)}).");
    }

    /// <summary>
    /// The image file of a query-block entry. QEMU reports a <c>json:{...}</c> pseudo-filename once the
    /// header's backing name differs from the node actually attached (after <see cref="RepointActiveDiskAsync"/>);
    /// the protocol node's filename inside it is the file.
    /// </summary>
    private static string ImageFileOf(JsonElement inserted) =>
        PlainFile(inserted.TryGetProperty("file", out var f) ? f.GetString() ?? "" : "");

    private static string PlainFile(string file)
    {
        if (!file.StartsWith("json:", StringComparison.Ordinal)) return file;
        try
        {
            using var doc = JsonDocument.Parse(file["json:".Length..]);
            if (doc.RootElement.TryGetProperty("file", out var proto) && proto.TryGetProperty("filename", out var fn))
                return fn.GetString() ?? file;
        }
        catch (JsonException) { }
        return file;
    }

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

    /// <summary>
    /// Inside the pause: reads the changed pages from the QEMU process in runs, straight into the page
    /// buffer, and keeps the non-zero ones. All-zero pages are only counted.
    /// </summary>
    private static void CopyChangedPages(GuestRamMapping mapping, List<long> changed, PageBuffer buffer,
        List<long> candidates, List<long> zeroChanged, CancellationToken ct)
    {
        using var mem = mapping.OpenMemory();
        var scratch = new byte[MaxRunPages * PageSize];
        int i = 0;
        while (i < changed.Count)
        {
            ct.ThrowIfCancellationRequested();
            long first = changed[i];
            int n = 1;
            while (n < MaxRunPages && i + n < changed.Count && changed[i + n] == first + n) n++;
            while (!mapping.SameSegment(first, n)) n--; // never read across two VMAs at once
            var dest = buffer.Reserve(n, scratch);
            n = dest.Length / PageSize;
            GuestRamMapping.ReadExactly(mem, dest, (long)mapping.AddressOf(first), $"guest RAM of PID {mapping.Pid}");
            int kept = 0;
            for (int k = 0; k < n; k++)
            {
                var page = dest.Slice(k * PageSize, PageSize);
                if (page.IndexOfAnyExcept((byte)0) < 0)
                {
                    zeroChanged.Add(first + k);
                    continue;
                }
                if (kept != k) page.CopyTo(dest.Slice(kept * PageSize, PageSize));
                kept++;
                candidates.Add(first + k);
            }
            buffer.Commit(dest, kept);
            i += n;
        }
    }

    /// <summary>
    /// Page table of the new snapshot. Unchanged pages keep the memory base's entries (or zero);
    /// changed zero pages are zero; changed pages equal to the parent's page keep the parent's entry;
    /// the rest go into this snapshot's layer, written here.
    /// </summary>
    private static MemoryHeader BuildHeader(long pageCount, SnapshotRef? memoryBase, SnapshotRef? parent,
        List<long> candidates, List<long> zeroChanged, PageBuffer buffer, string staging, out long stored, out long deduped)
    {
        var ids = new List<string>();
        var index = new Dictionary<string, ushort>(StringComparer.Ordinal);
        ushort OrdinalOf(string id)
        {
            if (!index.TryGetValue(id, out ushort o))
            {
                o = checked((ushort)(ids.Count + 2));
                ids.Add(id);
                index[id] = o;
            }
            return o;
        }
        // Translate an entry of another snapshot's header into this header's ordinals.
        ushort Remap(SnapshotRef owner, MemoryHeader h, ushort ordinal) => ordinal switch
        {
            MemoryHeader.ZeroOrdinal => MemoryHeader.ZeroOrdinal,
            MemoryHeader.OwnOrdinal => OrdinalOf(owner.Id),
            _ => OrdinalOf(h.LayerId(ordinal)),
        };

        var baseHeader = memoryBase is null ? null : MemoryHeader.Read(Path.Combine(memoryBase.Dir, SnapshotFiles.Header));
        var parentHeader = parent is null ? null
            : parent == memoryBase ? baseHeader : MemoryHeader.Read(Path.Combine(parent.Dir, SnapshotFiles.Header));
        foreach (var h in new[] { baseHeader, parentHeader })
            if (h is not null && h.PageCount != pageCount) throw new SnapshotException("Base/parent header page count does not match the VM.");

        // Provisional table in an unbounded ordinal space, then narrowed into a header.
        var ordinals = new ushort[pageCount];
        var slots = new uint[pageCount];
        if (baseHeader is not null)
        {
            for (long p = 0; p < pageCount; p++)
            {
                ordinals[p] = Remap(memoryBase!, baseHeader, baseHeader.Ordinals[p]);
                slots[p] = baseHeader.Slots[p];
            }
        }
        foreach (long p in zeroChanged)
        {
            ordinals[p] = MemoryHeader.ZeroOrdinal;
            slots[p] = 0;
        }

        stored = 0;
        deduped = 0;
        SafeFileHandle? parentImg = parentHeader is null ? null
            : File.OpenHandle(MemoryImage.Ensure(parent!), FileMode.Open, FileAccess.Read);
        using (parentImg)
        using (var layer = File.OpenHandle(Path.Combine(staging, SnapshotFiles.Layer), FileMode.CreateNew, FileAccess.Write))
        {
            var theirs = new byte[PageSize];
            var output = new byte[MaxRunPages * PageSize];
            int outPages = 0;
            for (int i = 0; i < candidates.Count; i++)
            {
                long p = candidates[i];
                var page = output.AsSpan(outPages * PageSize, PageSize);
                buffer.Read(i, page);
                if (parentHeader is not null && parentHeader.Ordinals[p] != MemoryHeader.ZeroOrdinal)
                {
                    // The parent image is sparse (holes read as zeros) and candidates are never all zero.
                    GuestRamMapping.ReadExactly(parentImg!, theirs, p * PageSize, "parent image");
                    if (page.SequenceEqual(theirs))
                    {
                        ordinals[p] = Remap(parent!, parentHeader, parentHeader.Ordinals[p]);
                        slots[p] = parentHeader.Slots[p];
                        deduped++;
                        continue;
                    }
                }
                ordinals[p] = MemoryHeader.OwnOrdinal;
                slots[p] = checked((uint)(stored + outPages));
                if (++outPages == MaxRunPages)
                {
                    RandomAccess.Write(layer, output, stored * PageSize);
                    stored += outPages;
                    outPages = 0;
                }
            }
            if (outPages > 0)
            {
                RandomAccess.Write(layer, output.AsSpan(0, outPages * PageSize), stored * PageSize);
                stored += outPages;
            }
            NativeFs.FSync(layer);
        }

        var header = new MemoryHeader(pageCount, ids);
        Array.Copy(ordinals, header.Ordinals, pageCount);
        Array.Copy(slots, header.Slots, pageCount);
        header.PruneUnusedLayers();
        return header;
    }

    /// <summary>
    /// memory.img = the file the VM mapped (hole-preserving copy) with every changed page applied:
    /// non-zero ones from the page buffer, zero ones punched out.
    /// </summary>
    private static void WriteImage(string vmMemoryFile, long length, PageBuffer buffer, List<long> candidates, List<long> zeroChanged, string dest)
    {
        string tmp = dest + ".tmp";
        using (var img = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(img, length);
            MemoryImage.SparseCopy(vmMemoryFile, img, length);
            var run = new byte[MaxRunPages * PageSize];
            for (int i = 0; i < candidates.Count;)
            {
                long first = candidates[i];
                int n = 1;
                while (n < MaxRunPages && i + n < candidates.Count && candidates[i + n] == first + n) n++;
                for (int k = 0; k < n; k++) buffer.Read(i + k, run.AsSpan(k * PageSize, PageSize));
                RandomAccess.Write(img, run.AsSpan(0, n * PageSize), first * PageSize);
                i += n;
            }
            var zero = new byte[PageSize];
            for (int i = 0; i < zeroChanged.Count;)
            {
                long first = zeroChanged[i];
                int n = 1;
                while (i + n < zeroChanged.Count && zeroChanged[i + n] == first + n) n++;
                if (!NativeFs.TryPunchHole(img, first * PageSize, (long)n * PageSize))
                    for (int k = 0; k < n; k++) RandomAccess.Write(img, zero, (first + k) * PageSize);
                i += n;
            }
            NativeFs.FSync(img);
        }
        File.Move(tmp, dest);
    }
}
