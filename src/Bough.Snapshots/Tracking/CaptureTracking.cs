using Bough.Vmm;
using Bough.Vmm.Tracking;
using Microsoft.Extensions.Logging;

namespace Bough.Snapshots.Tracking;

/// <summary>How a capture found the pages it copied (<see cref="SnapshotMetadata.Tracking"/>).</summary>
public static class CaptureMethods
{
    /// <summary>Only the pages written since the previous capture of this VM (<see cref="WrittenPageTracker"/>); the
    /// snapshot's memory is a layer over that capture's.</summary>
    public const string WrittenPages = "written-pages";

    /// <summary>Every page QEMU holds privately, i.e. written since it mapped its memory file (the pagemap scan); the
    /// snapshot's memory is a layer over the memory base.</summary>
    public const string FullScan = "full-scan";
}

/// <summary>
/// One capture's choice between copying the pages written since the previous capture and copying every page QEMU
/// holds privately, and its use of the VM's <see cref="WrittenPageTracker"/>. Written pages are used only when
/// everything is certain: the tracker's baseline is exactly the capture's parent (same capture token) and both scans
/// succeed. Otherwise every page QEMU holds is copied, which is always right, and the tracker still scans so that this
/// capture becomes the baseline of the next. With a tracker most pages are copied before the VM stops and the window
/// copies only those written since (<see cref="PreCopy"/>).
/// </summary>
internal sealed class CaptureTracking : IDisposable
{
    private readonly WrittenPagesSession? _session;
    private readonly SnapshotRef? _baselineParent;
    private readonly string _why;
    private bool _preCopied;

    private CaptureTracking(WrittenPagesSession? session, SnapshotRef? baselineParent, string why)
    {
        _session = session;
        _baselineParent = baselineParent;
        _why = why;
    }

    /// <summary>Identifies this capture's memory state; written into snapshot.json and, once complete, the tracker's baseline.</summary>
    public string Token { get; } = Guid.NewGuid().ToString("N");

    /// <summary>What the stop window did (<see cref="CaptureMethods"/>); set by <see cref="FindChangedPages"/>.</summary>
    public string Method { get; private set; } = CaptureMethods.FullScan;

    /// <summary>Why the full scan was used (empty when it was not).</summary>
    public string FullScanReason { get; private set; } = "";

    /// <summary>The snapshot the copied pages are a layer over when written pages were used; null: the memory base.</summary>
    public SnapshotRef? LayeredOn => Method == CaptureMethods.WrittenPages ? _baselineParent : null;

    /// <summary>Before the VM stops: opens the tracker session and checks whether <paramref name="parent"/> is its baseline.</summary>
    public static CaptureTracking Begin(VmProcess vm, GuestRamMapping mapping, SnapshotRef? parent, SnapshotMetadata? parentMeta)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(mapping);
        var tracker = vm.WriteTracker;
        var session = tracker.TryBeginCapture(mapping.TrackingSegments());
        if (session is null)
            return new CaptureTracking(null, null, tracker.IsArmed ? "another capture of this VM holds the tracker" : tracker.Status);
        if (session.Baseline is not null && parent is not null && parentMeta?.CaptureToken == session.Baseline &&
            parentMeta.PageCount == mapping.PageCount)
            return new CaptureTracking(session, parent, "");
        return new CaptureTracking(session, null, session.Baseline is null
            ? "no baseline yet (first capture since this QEMU started or was adopted)"
            : $"the parent {parent?.Id ?? "(none)"} is not the capture the tracking started from");
    }

    /// <summary>
    /// Before the VM stops, with the VM running: scans (write-protecting what it reports) and copies the pages this
    /// capture needs as they are now, written since the baseline or every page QEMU holds. The stop window then copies
    /// only what is written after this scan (<see cref="FindChangedPages"/>). Without a tracker this does nothing and the
    /// window copies everything. The first scan of a VM write-protects all its RAM; it also runs here, not in the window.
    /// </summary>
    public void PreCopy(GuestRamMapping mapping, CopiedPages pages, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(pages);
        if (_session?.Scan() is not { } written) return;
        // After the scan: a page that changes from here on is reported again by the scan in the window.
        pages.Collect(mapping, _baselineParent is not null ? written.Pending : mapping.ChangedPages(), ct);
        _preCopied = true;
    }

    /// <summary>
    /// Inside the stop window: the pages to copy now (ascending), and whether they go on top of the pre-copy
    /// (<c>Late</c>) or replace it. After a pre-copy: the pages written since its scan. Else, or when that scan fails,
    /// every page QEMU holds privately (the full scan), which never depends on the tracker.
    /// </summary>
    public (IReadOnlyList<long> Pages, bool Late) FindChangedPages(GuestRamMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        Method = CaptureMethods.FullScan;
        FullScanReason = _why;
        if (_preCopied)
        {
            if (_session!.Scan() is { } since)
            {
                if (_baselineParent is not null) Method = CaptureMethods.WrittenPages;
                return (since.Reported, true);
            }
            FullScanReason = "the write-tracking scan failed";
        }
        else if (_session is not null)
        {
            FullScanReason = "the write-tracking scan failed";
        }
        return (mapping.ChangedPages(), false);
    }

    /// <summary>The snapshot is complete: it becomes the tracker's baseline (if the scan in its window succeeded).</summary>
    public void Commit() => _session?.Commit(Token);

    /// <summary>Ends the session; without <see cref="Commit"/> every page scanned stays pending for the next capture.</summary>
    public void Dispose() => _session?.Dispose();

    /// <summary>One line for the capture log.</summary>
    public void Log(ILogger log, int pid, long pages)
    {
        if (Method == CaptureMethods.WrittenPages)
            log.LogDebug("QEMU PID {Pid}: {Pages} pages written since snapshot {Parent}", pid, pages, _baselineParent!.Id);
        else
            log.LogDebug("QEMU PID {Pid}: full scan ({Pages} pages QEMU holds): {Reason}", pid, pages, FullScanReason);
    }
}
