namespace Bough.Snapshots;

/// <summary>
/// The guest pages a capture copied out of the stopped VM: the non-zero changed pages (in a
/// <see cref="PageBuffer"/>, in the order of <see cref="NonZero"/>) and the numbers of the changed pages that
/// were all zero (only counted, never stored).
/// </summary>
internal sealed class CopiedPages : IDisposable
{
    /// <summary>Pages read from the QEMU process per system call at most (also the longest run the layer writer handles at once).</summary>
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
    /// Inside the pause: reads the changed pages (<paramref name="changed"/>, ascending) from the QEMU process in
    /// batches of up to <see cref="MaxRunPages"/> pages and <see cref="ProcessMemory.MaxRuns"/> runs per system call,
    /// straight into the page buffer, and keeps the non-zero ones.
    /// </summary>
    public void Collect(GuestRamMapping mapping, IReadOnlyList<long> changed, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(changed);
        ChangedCount = changed.Count;
        using var mem = mapping.OpenMemory();
        var scratch = GC.AllocateUninitializedArray<byte>(MaxRunPages * PageSize, pinned: true);
        var remote = new ProcessMemory.IoVec[ProcessMemory.MaxRuns];
        int i = 0;
        while (i < changed.Count)
        {
            ct.ThrowIfCancellationRequested();
            var dest = Buffer.Reserve(MaxRunPages, scratch);
            int capacity = dest.Count / PageSize, filled = 0, runs = 0;
            while (filled < capacity && runs < remote.Length && i + filled < changed.Count)
            {
                long first = changed[i + filled];
                int n = 1;
                while (filled + n < capacity && i + filled + n < changed.Count && changed[i + filled + n] == first + n) n++;
                while (!mapping.SameSegment(first, n)) n--; // a run never crosses two VMAs
                remote[runs++] = new ProcessMemory.IoVec { Base = (nint)mapping.AddressOf(first), Length = (nuint)(n * PageSize) };
                filled += n;
            }
            ProcessMemory.Read(mapping.Pid, dest.Array!, dest.Offset, filled * PageSize, remote, runs, mem);
            var span = dest.AsSpan(0, filled * PageSize);
            int kept = 0;
            for (int k = 0; k < filled; k++)
            {
                var page = span.Slice(k * PageSize, PageSize);
                if (page.IndexOfAnyExcept((byte)0) < 0)
                {
                    Zero.Add(changed[i + k]);
                    continue;
                }
                if (kept != k) page.CopyTo(span.Slice(kept * PageSize, PageSize));
                kept++;
                NonZero.Add(changed[i + k]);
            }
            Buffer.Commit(span, kept);
            i += filled;
        }
    }

    public void Dispose() => Buffer.Dispose();
}
