namespace Bough.Vmm.Tracking;

/// <summary>
/// One capture's use of a <see cref="WrittenPageTracker"/>: read <see cref="Baseline"/> before the VM stops to decide
/// whether the capture can be a layer over that snapshot, call <see cref="ScanInWindow"/> exactly once while the VM is
/// stopped (even when everything is copied anyway: that scan starts the tracking the next capture relies on), and
/// <see cref="Commit"/> once the snapshot is complete. Dispose in every case; an uncommitted session keeps what it
/// scanned pending for the next capture.
/// </summary>
public sealed class WrittenPagesSession : IDisposable
{
    private readonly WrittenPageTracker _tracker;
    private bool _scanned;
    private bool _disposed;

    internal WrittenPagesSession(WrittenPageTracker tracker, string? baseline)
    {
        _tracker = tracker;
        Baseline = baseline;
    }

    /// <summary>
    /// The capture token (see the snapshot metadata) of the capture whose memory equals the VM's memory at the last
    /// committed scan; null when unknown. A capture whose parent carries this token may copy only
    /// <see cref="ScanInWindow"/>'s pages and take every other page from the parent.
    /// </summary>
    public string? Baseline { get; }

    /// <summary>
    /// With the VM stopped: every page (file page number, ascending) written since <see cref="Baseline"/>'s scan, and
    /// write-protects them again. Null when the scan failed: tracking is then off for this VM and the capture must copy
    /// every page QEMU holds privately.
    /// </summary>
    public IReadOnlyList<long>? ScanInWindow()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_scanned) throw new InvalidOperationException("A capture scans once.");
        _scanned = true;
        var pages = _tracker.ScanAndCollect();
        Succeeded = pages is not null;
        return pages;
    }

    /// <summary>The scan of this session ran and succeeded.</summary>
    public bool Succeeded { get; private set; }

    /// <summary>
    /// The capture is complete and its snapshot, named by <paramref name="captureToken"/>, holds the VM's memory as it
    /// was at this session's scan: the next capture may be a layer over it. Ignored when the scan failed.
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
