using System.Globalization;
using Bough.Vmm.Tracking;
using Microsoft.Win32.SafeHandles;

namespace Bough.Snapshots;

/// <summary>
/// Where a QEMU process maps the file that backs guest RAM, and which of those pages the process
/// has written. Because RAM is mapped private (<c>share=off</c>) over an immutable file, a page the
/// guest wrote is a private anonymous copy inside QEMU; every other page is still the file's.
/// </summary>
/// <remarks>
/// Pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst): 63 present, 62 swapped,
/// 61 file-page or shared-anon. A page of the mapping is "changed" when it is present and not a
/// file page (a private copy), or swapped (only anonymous pages of a private mapping swap) unless the swap entry is
/// a pte marker: write tracking (<see cref="WrittenPageTracker"/>) leaves uffd-wp markers on pages QEMU never
/// touched, which the pagemap reports as swapped, of swap type SWP_PTE_MARKER (31), with no page behind them. Without
/// CAP_SYS_ADMIN the type reads as 0 and markers count as changed: more copying, never less.
/// Soft-dirty (bit 55) would give "written since the last snapshot", but this kernel kind lacks
/// CONFIG_MEM_SOFT_DIRTY, so the set is "written since QEMU mapped the file". "Written since the last capture" comes
/// from <see cref="WrittenPageTracker"/> instead (userfaultfd write-protect), when it is armed; this scan is the fallback.
/// </remarks>
internal sealed class GuestRamMapping
{
    public const int PageSize = 4096;
    private const ulong Present = 1UL << 63;
    private const ulong Swapped = 1UL << 62;
    private const ulong FilePage = 1UL << 61;
    /// <summary>Bits 0-4 of a swap entry: the swap type (shown to CAP_SYS_ADMIN only; 0 otherwise).</summary>
    private const ulong SwapTypeMask = 0x1f;
    /// <summary>SWP_PTE_MARKER, the last swap type: a "swapped" entry of this type holds no page (see ChangedPages).</summary>
    private const ulong PteMarkerType = 0x1f;

    /// <summary>One VMA of the mapping: file offsets [FileOffset, FileOffset+Length) at virtual address Start.</summary>
    public sealed record Segment(ulong Start, long FileOffset, long Length);

    private GuestRamMapping(int pid, IReadOnlyList<Segment> segments, long length)
    {
        Pid = pid;
        Segments = segments;
        Length = length;
    }

    public int Pid { get; }
    public IReadOnlyList<Segment> Segments { get; }

    /// <summary>Bytes of guest RAM mapped from the file (file offsets 0..Length, contiguous).</summary>
    public long Length { get; }
    public long PageCount => Length / PageSize;

    /// <summary>
    /// Finds the mapping of <paramref name="memoryFile"/> in /proc/PID/maps by device and inode (the
    /// path QEMU opened may differ from ours by symlinks or bind mounts; a renamed or deleted file
    /// keeps its identity). Falls back to the path when no line matches the identity.
    /// </summary>
    public static GuestRamMapping Find(int pid, string memoryFile)
    {
        string full = Path.GetFullPath(memoryFile);
        var (major, minor, inode) = NativeFs.Identity(full);
        var byIdentity = new List<Segment>();
        var byPath = new List<Segment>();
        foreach (string line in File.ReadLines($"/proc/{pid}/maps"))
        {
            // start-end perms offset major:minor inode   path
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 5) continue;
            var range = parts[0].Split('-');
            ulong start = ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong end = ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            long offset = long.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var dev = parts[3].Split(':');
            uint maj = uint.Parse(dev[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            uint min = uint.Parse(dev[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong ino = ulong.Parse(parts[4], CultureInfo.InvariantCulture);
            string path = parts.Length > 5 ? parts[5].Trim() : "";
            var seg = new Segment(start, offset, (long)(end - start));
            if (ino == inode && maj == major && min == minor) byIdentity.Add(seg);
            else if (ino != 0 && path == full) byPath.Add(seg);
        }
        var segments = byIdentity.Count > 0 ? byIdentity : byPath;
        if (segments.Count == 0)
            throw new SnapshotException($"QEMU PID {pid} does not map {full} (is it the VM's memory-backend-file?).");
        segments.Sort((a, b) => a.FileOffset.CompareTo(b.FileOffset));
        long expected = 0;
        foreach (var s in segments)
        {
            if (s.FileOffset != expected)
                throw new SnapshotException($"QEMU PID {pid} maps {full} in pieces that do not tile the file (gap or overlap at offset {expected}).");
            expected += s.Length;
        }
        if (expected % PageSize != 0) throw new SnapshotException($"Mapping of {full} is not page aligned ({expected} bytes).");
        return new GuestRamMapping(pid, segments, expected);
    }

    /// <summary>The mapping as the write tracker registers it.</summary>
    public IReadOnlyList<GuestRamSegment> TrackingSegments() =>
        [.. Segments.Select(s => new GuestRamSegment(s.Start, s.FileOffset, s.Length))];

    /// <summary>
    /// Indexes (file page numbers) of pages the process holds privately, in ascending order.
    /// Reads only the pagemap (8 bytes per page), not the pages.
    /// </summary>
    public List<long> ChangedPages()
    {
        var changed = new List<long>();
        using var pagemap = File.OpenHandle($"/proc/{Pid}/pagemap", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        const int Batch = 8192; // entries per read (64 KiB)
        var buffer = new byte[Batch * 8];
        foreach (var seg in Segments)
        {
            long pages = seg.Length / PageSize;
            long firstVpn = (long)(seg.Start / PageSize);
            long filePage0 = seg.FileOffset / PageSize;
            for (long done = 0; done < pages;)
            {
                int n = (int)Math.Min(Batch, pages - done);
                ReadExactly(pagemap, buffer.AsSpan(0, n * 8), (firstVpn + done) * 8, "pagemap");
                for (int i = 0; i < n; i++)
                {
                    ulong e = BitConverter.ToUInt64(buffer, i * 8);
                    bool privateCopy = (e & Present) != 0 && (e & FilePage) == 0;
                    bool swappedOut = (e & Swapped) != 0 && (e & SwapTypeMask) != PteMarkerType;
                    if (privateCopy || swappedOut) changed.Add(filePage0 + done + i);
                }
                done += n;
            }
        }
        return changed;
    }

    /// <summary>Virtual address of a file page inside the QEMU process.</summary>
    public ulong AddressOf(long page)
    {
        long offset = page * PageSize;
        foreach (var s in Segments)
            if (offset >= s.FileOffset && offset < s.FileOffset + s.Length)
                return s.Start + (ulong)(offset - s.FileOffset);
        throw new ArgumentOutOfRangeException(nameof(page));
    }

    /// <summary>True when <paramref name="count"/> pages from <paramref name="page"/> are virtually contiguous.</summary>
    public bool SameSegment(long page, long count)
    {
        long a = page * PageSize, b = (page + count) * PageSize;
        foreach (var s in Segments)
            if (a >= s.FileOffset && a < s.FileOffset + s.Length) return b <= s.FileOffset + s.Length;
        return false;
    }

    public SafeFileHandle OpenMemory() =>
        File.OpenHandle($"/proc/{Pid}/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);

    internal static void ReadExactly(SafeFileHandle h, Span<byte> buffer, long offset, string what)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(h, buffer[done..], offset + done);
            if (n <= 0) throw new SnapshotException($"Short read of {what} at offset {offset + done}.");
            done += n;
        }
    }
}
