namespace Bough.Snapshots;

/// <summary>
/// The guest pages a capture copied out of the stopped VM: the non-zero changed pages (in a
/// <see cref="PageBuffer"/>, in the order of <see cref="NonZero"/>) and the numbers of the changed pages that
/// were all zero (only counted, never stored).
/// </summary>
internal sealed class CopiedPages : IDisposable
{
    /// <summary>Pages read from the QEMU process per system call at most.</summary>
    public const int MaxRunPages = 256;
    private const int PageSize = GuestRamMapping.PageSize;

    public CopiedPages(long maxBufferedBytes, string spillPath) => Buffer = new PageBuffer(maxBufferedBytes, spillPath);

    /// <summary>Contents of the non-zero changed pages; entry i is page <see cref="NonZero"/>[i].</summary>
    public PageBuffer Buffer { get; }

    /// <summary>Non-zero changed pages, ascending.</summary>
    public List<long> NonZero { get; } = [];

    /// <summary>Changed pages that were all zero, ascending.</summary>
    public List<long> Zero { get; } = [];

    /// <summary>Pages copied: written since the previous capture, or held privately by QEMU (see <see cref="Tracking.CaptureTracking"/>).</summary>
    public long ChangedCount { get; private set; }

    /// <summary>
    /// Inside the pause: reads the changed pages (<paramref name="changed"/>, ascending) from the QEMU
    /// process in runs, straight into the page buffer, and keeps the non-zero ones.
    /// </summary>
    public void Collect(GuestRamMapping mapping, IReadOnlyList<long> changed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(changed);
        ChangedCount = changed.Count;
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
            var dest = Buffer.Reserve(n, scratch);
            n = dest.Length / PageSize;
            GuestRamMapping.ReadExactly(mem, dest, (long)mapping.AddressOf(first), $"guest RAM of PID {mapping.Pid}");
            int kept = 0;
            for (int k = 0; k < n; k++)
            {
                var page = dest.Slice(k * PageSize, PageSize);
                if (page.IndexOfAnyExcept((byte)0) < 0)
                {
                    Zero.Add(first + k);
                    continue;
                }
                if (kept != k) page.CopyTo(dest.Slice(kept * PageSize, PageSize));
                kept++;
                NonZero.Add(first + k);
            }
            Buffer.Commit(dest, kept);
            i += n;
        }
    }

    public void Dispose() => Buffer.Dispose();
}
