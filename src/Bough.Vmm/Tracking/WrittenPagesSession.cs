namespace Bough.Vmm.Tracking;

/// <summary>The outcome of one scan (file page numbers, ascending).</summary>
/// <param name="Pending">Every page written since the baseline's scan: this scan's and those of scans no capture has
/// committed yet.</param>
/// <param name="Reported">The pages this scan reported: written since the previous scan.</param>
public sealed record WrittenPages(IReadOnlyList<long> Pending, IReadOnlyList<long> Reported);

/// <summary>
/// One capture's use of a <see cref="WrittenPageTracker"/>. Read <see cref="Baseline"/> before the VM stops to decide
/// whether the capture can be a layer over that snapshot, <see cref="Scan"/>, and <see cref="Commit"/> once the
/// snapshot is complete. Dispose in every case; an uncommitted session keeps what it scanned pending for the next
/// capture.
/// </summary>
/// <remarks>
/// Where the scan goes decides what a commit may claim. A capture that copies only the scanned pages must scan with
/// the VM stopped, after its last write, and copy in the same stop. A capture that copies every page QEMU holds may
/// scan before the VM stops: pages written between that scan and its copy are in the copy and are reported again by
/// the next scan, so nothing is missed, and the slow first scan of a VM (it write-protects every page, including those
/// never touched) stays out of the stop window.
/// </remarks>
public sealed class WrittenPagesSession : IDisposable
{
    private readonly WrittenPageTracker _tracker;
    private bool _failed;
    private bool _disposed;

    internal WrittenPagesSession(WrittenPageTracker tracker, string? baseline)
    {
        _tracker = tracker;
        Baseline = baseline;
    }

    /// <summary>
    /// The capture token (see the snapshot metadata) of the capture whose memory equals the VM's memory at the last
    /// committed scan; null when unknown. A capture whose parent carries this token may copy only
    /// <see cref="Scan"/>'s pages and take every other page from the parent.
    /// </summary>
    public string? Baseline { get; }

    /// <summary>
    /// Scans: the pages written since <see cref="Baseline"/>'s scan and since the previous scan, write-protecting them
    /// again. Null when the scan failed: tracking is then off for this VM, and the capture must copy every page QEMU
    /// holds privately.
    /// </summary>
    public WrittenPages? Scan()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var pages = _tracker.ScanAndCollect();
        if (pages is null) _failed = true;
        else Succeeded = !_failed;
        return pages;
    }

    /// <summary>At least one scan of this session ran, and every one succeeded.</summary>
    public bool Succeeded { get; private set; }

    /// <summary>
    /// The capture is complete and its snapshot, named by <paramref name="captureToken"/>, holds the VM's memory as it
    /// was at (or, for a capture of every page QEMU holds, after) this session's last scan: the next capture may be a
    /// layer over it. Ignored unless <see cref="Succeeded"/>.
    /// </summary>
    public void Commit(string captureToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(captureToken);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Succeeded) _tracker.Commit(captureToken);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tracker.EndSession();
    }
}
