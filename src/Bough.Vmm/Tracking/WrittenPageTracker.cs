using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace Bough.Vmm.Tracking;

/// <summary>A stretch of guest RAM as QEMU maps it: <paramref name="Length"/> bytes of the memory file from
/// <paramref name="FileOffset"/>, at <paramref name="Address"/> in QEMU's address space.</summary>
public readonly record struct GuestRamSegment(ulong Address, long FileOffset, long Length);

/// <summary>
/// Which guest pages a VM has written since its last capture, so the next capture copies only those instead of every
/// page QEMU holds privately. One per <see cref="VmProcess"/>, armed when the VM starts or is adopted.
/// </summary>
/// <remarks>
/// <para>Mechanism: QEMU is started with a preload library (<c>Tracking/Native/uffd-preload.c</c>) that parks a
/// userfaultfd of its own address space at descriptor <see cref="QemuDescriptor"/>. Arming takes a copy of it
/// (<c>pidfd_getfd</c>) and enables asynchronous write-protect; the first capture registers guest RAM. A
/// <c>PAGEMAP_SCAN</c> returns the pages written since the previous scan and protects them again in the same walk
/// (<see cref="AsyncWriteProtect"/>); <see cref="WrittenPagesSession"/> says where a capture must scan.</para>
/// <para>Bookkeeping, so no written page is ever missed: <see cref="WrittenPagesSession.Baseline"/> names the capture
/// (by the token it wrote into its snapshot) whose memory equals the VM's memory at the last scan that capture
/// committed. Every page scanned since is kept in a pending set until a later capture commits, so a capture that fails
/// after its scan loses nothing. Unknown baseline (first capture of this process, after an adoption, after a scan
/// failure): the capturer scans everything, as without tracking, and that capture becomes the baseline. A failed scan
/// disarms tracking for the life of this object: the kernel may have protected pages it did not report.</para>
/// <para>Thread safety: one capture session at a time (<see cref="TryBeginCapture"/> returns null while another is
/// open); the engine already runs one capture per VM at a time.</para>
/// </remarks>
public sealed class WrittenPageTracker : IDisposable
{
    /// <summary>Where the preload library leaves QEMU's userfaultfd (must match <c>BOUGH_UFFD_FD</c> in the library).</summary>
    public const int QemuDescriptor = 1000;
    private const int PageSize = 4096;

    private readonly ILogger _log;
    private readonly int _pid;
    private readonly Lock _gate = new();
    private int _sessionOpen;
    private AsyncWriteProtect? _wp;
    private GuestRamSegment[]? _registered;
    private ulong[] _pending = [];
    private string? _baseline;

    private WrittenPageTracker(int pid, AsyncWriteProtect? wp, string status, ILogger log)
    {
        _pid = pid;
        _wp = wp;
        Status = status;
        _log = log;
    }

    /// <summary>True while captures of this VM can use written-page tracking.</summary>
    public bool IsArmed
    {
        get { lock (_gate) return _wp is not null; }
    }

    /// <summary>What tracking does for this VM, or why it is not in use (for logs and diagnostics).</summary>
    public string Status { get; private set; }

    /// <summary>A tracker that never tracks: captures scan every page QEMU holds privately.</summary>
    public static WrittenPageTracker Off(string reason, ILogger? log = null) =>
        new(0, null, reason, log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    /// <summary>
    /// Takes QEMU's userfaultfd and enables asynchronous write-protect on it. Never throws: without the descriptor, a
    /// pidfd or kernel support the tracker is returned disarmed, with the reason in <see cref="Status"/>.
    /// </summary>
    /// <param name="pid">QEMU's pid.</param>
    /// <param name="pidfd">A pidfd of exactly that process (immune to pid reuse); null disarms.</param>
    /// <param name="log">Logger.</param>
    internal static WrittenPageTracker Arm(int pid, SafeFileHandle? pidfd, ILogger log)
    {
        if (pidfd is null || pidfd.IsInvalid)
            return Disarmed(pid, "no pidfd for QEMU (kernel without pidfd_open)", log);
        var wp = AsyncWriteProtect.Take(pid, pidfd, QemuDescriptor, out string reason);
        if (wp is null) return Disarmed(pid, reason, log);
        switch (wp.EnableApi(out string detail))
        {
            case AsyncWriteProtect.ApiResult.Enabled:
                log.LogDebug("Write tracking armed for QEMU PID {Pid} ({Detail})", pid, detail);
                return new WrittenPageTracker(pid, wp, "armed: asynchronous write-protect", log);
            case AsyncWriteProtect.ApiResult.AlreadyDoneOrUnsupported:
                // An adopted VM: the previous daemon did the handshake. The first capture's registration and scan
                // (which checks the mode) confirm it or disarm.
                log.LogDebug("Write tracking for QEMU PID {Pid}: userfaultfd already initialised ({Detail}); checked at the first capture", pid, detail);
                return new WrittenPageTracker(pid, wp, "armed: userfaultfd set up by an earlier daemon (checked at the first capture)", log);
            default:
                wp.Dispose();
                return Disarmed(pid, $"UFFDIO_API refused: {detail}", log);
        }
    }

    private static WrittenPageTracker Disarmed(int pid, string reason, ILogger log)
    {
        log.LogInformation("Write tracking unavailable for QEMU PID {Pid}: {Reason}; captures scan every page QEMU holds", pid, reason);
        return new WrittenPageTracker(pid, null, "unavailable: " + reason, log);
    }

    /// <summary>
    /// Opens a capture's use of the tracker, registering <paramref name="segments"/> (guest RAM, in file order) on first
    /// use. Null when tracking is unavailable, registration fails (then it is disarmed), or another session is open.
    /// Call before the VM stops; dispose when the capture ends, committed or not.
    /// </summary>
    public WrittenPagesSession? TryBeginCapture(IReadOnlyList<GuestRamSegment> segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        if (Interlocked.Exchange(ref _sessionOpen, 1) != 0) return null;
        lock (_gate)
        {
            if (_wp is not null && EnsureRegistered(segments)) return new WrittenPagesSession(this, _baseline);
        }
        Volatile.Write(ref _sessionOpen, 0);
        return null;
    }

    private bool EnsureRegistered(IReadOnlyList<GuestRamSegment> segments)
    {
        if (_registered is not null && _registered.SequenceEqual(segments)) return true;
        long bytes = 0;
        try
        {
            foreach (var s in segments)
            {
                if (s.Length <= 0 || s.Length % PageSize != 0 || s.FileOffset % PageSize != 0 || s.Address % PageSize != 0)
                    throw new IOException($"guest RAM segment {s} is not page aligned");
                _wp!.Register(s.Address, (ulong)s.Length);
                bytes = Math.Max(bytes, s.FileOffset + s.Length);
            }
        }
        catch (IOException e)
        {
            Disarm($"registration failed: {e.Message}");
            return false;
        }
        // New ranges: nothing is known about them until a capture scans everything.
        _registered = [.. segments];
        _pending = new ulong[(bytes / PageSize + 63) / 64];
        _baseline = null;
        return true;
    }

    /// <summary>Scans, adds to the pending set, and returns what this scan reported and everything pending since the
    /// baseline (both ascending); null when the scan failed.</summary>
    internal WrittenPages? ScanAndCollect()
    {
        lock (_gate)
        {
            if (_wp is null || _registered is null) return null;
            var reported = new List<long>();
            try
            {
                foreach (var s in _registered)
                {
                    ulong end = s.Address + (ulong)s.Length;
                    long filePage0 = s.FileOffset / PageSize;
                    _wp.ScanAndProtect(s.Address, end, (from, to) =>
                    {
                        if (from < s.Address || to > end || from >= to)
                            throw new IOException($"PAGEMAP_SCAN reported 0x{from:x}-0x{to:x} outside 0x{s.Address:x}-0x{end:x}");
                        long first = filePage0 + (long)((from - s.Address) / PageSize);
                        long count = (long)((to - from + PageSize - 1) / PageSize);
                        for (long p = first; p < first + count; p++)
                        {
                            _pending[p >> 6] |= 1UL << (int)(p & 63);
                            reported.Add(p);
                        }
                    });
                }
            }
            catch (IOException e)
            {
                Disarm($"scan failed: {e.Message}");
                return null;
            }
            var pending = new List<long>();
            for (int w = 0; w < _pending.Length; w++)
            {
                ulong bits = _pending[w];
                while (bits != 0)
                {
                    int b = System.Numerics.BitOperations.TrailingZeroCount(bits);
                    pending.Add(((long)w << 6) + b);
                    bits &= bits - 1;
                }
            }
            return new WrittenPages(pending, reported);
        }
    }

    /// <summary>The capture whose scan succeeded is complete: its snapshot (named by <paramref name="token"/>) is the new baseline.</summary>
    internal void Commit(string token)
    {
        lock (_gate)
        {
            if (_wp is null) return;
            _baseline = token;
            Array.Clear(_pending);
        }
    }

    internal void EndSession() => Volatile.Write(ref _sessionOpen, 0);

    private void Disarm(string reason)
    {
        _log.LogWarning("Write tracking disarmed for QEMU PID {Pid}: {Reason}; captures scan every page QEMU holds", _pid, reason);
        Status = "disarmed: " + reason;
        _wp?.Dispose();
        _wp = null;
        _baseline = null;
        _registered = null;
    }

    /// <summary>Closes the daemon's copy of QEMU's userfaultfd (QEMU keeps its own; its registration stays).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _wp?.Dispose();
            _wp = null;
            _baseline = null;
            _registered = null;
            if (Status.StartsWith("armed", StringComparison.Ordinal)) Status = "detached";
        }
    }
}
