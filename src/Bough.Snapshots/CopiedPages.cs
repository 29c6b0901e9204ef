namespace Bough.Snapshots;

/// <summary>
/// The guest pages a capture copied out of the VM: the non-zero ones (their contents, in the order of
/// <see cref="NonZero"/>) and the numbers of those that were all zero (only counted, never stored).
/// </summary>
/// <remarks>
/// One pass (<see cref="Collect"/>) copies a set of pages. With write tracking a capture makes two: a pre-copy of
/// most pages while the VM still runs, then, in the stop window, a late pass (<see cref="CollectLate"/>) of the
/// pages written since the pre-copy's scan, whose contents replace the early ones. A page not written since that
/// scan has the same content at the pre-copy and in the window, so the merged set is the VM's memory in the window.
/// </remarks>
internal sealed class CopiedPages : IDisposable
{
    /// <summary>Pages read from the QEMU process per system call at most (also the longest run the layer writer handles at once).</summary>
    public const int MaxRunPages = 256;
    private const int PageSize = GuestRamMapping.PageSize;

    private readonly long _maxBufferedBytes;
    private readonly string _spillPath;
    private Pass? _early;
    private Pass? _late;
    private Merged? _merged;

    /// <param name="maxBufferedBytes">Process memory per pass before pages spill to a file.</param>
    /// <param name="spillPath">The spill file of the first pass (the late pass adds a suffix).</param>
    public CopiedPages(long maxBufferedBytes, string spillPath)
    {
        _maxBufferedBytes = maxBufferedBytes;
        _spillPath = spillPath;
    }

    /// <summary>A first pass has been collected.</summary>
    public bool HasFirstPass => _early is not null;

    /// <summary>Pages copied before the VM stopped (0 without a pre-copy).</summary>
    public long PreCopiedCount => _late is null ? 0 : _early!.Count;

    /// <summary>Pages copied in the stop window: the late pass after a pre-copy, else all of them.</summary>
    public long WindowCount => _late?.Count ?? ChangedCount;

    /// <summary>Non-zero copied pages, ascending; <see cref="Read"/> index i is page NonZero[i].</summary>
    public IReadOnlyList<long> NonZero => View().NonZero;

    /// <summary>Copied pages that were all zero, ascending.</summary>
    public IReadOnlyList<long> Zero => View().Zero;

    /// <summary>Pages copied (both passes, each page once).</summary>
    public long ChangedCount => NonZero.Count + Zero.Count;

    /// <summary>The first (or only) pass: reads <paramref name="pages"/> (ascending) from the VM.</summary>
    public void Collect(GuestRamMapping mapping, IReadOnlyList<long> pages, CancellationToken ct)
    {
        if (_early is not null) throw new InvalidOperationException("The first pass was collected already.");
        _merged = null;
        _early = Pass.Read(mapping, pages, _maxBufferedBytes, _spillPath, ct);
    }

    /// <summary>The late pass: <paramref name="pages"/> (ascending), written since the first pass's scan, replace what it read.</summary>
    public void CollectLate(GuestRamMapping mapping, IReadOnlyList<long> pages, CancellationToken ct)
    {
        if (_early is null || _late is not null) throw new InvalidOperationException("A late pass follows exactly one first pass.");
        _merged = null;
        _late = Pass.Read(mapping, pages, _maxBufferedBytes, _spillPath + ".late", ct);
    }

    /// <summary>Forgets both passes (their pages are no longer wanted, e.g. the late scan failed).</summary>
    public void Reset()
    {
        _early?.Dispose();
        _late?.Dispose();
        _early = _late = null;
        _merged = null;
    }

    /// <summary>Copies non-zero page <paramref name="index"/> (of <see cref="NonZero"/>) into <paramref name="dest"/>.</summary>
    public void Read(int index, Span<byte> dest)
    {
        var view = View();
        int source = view.Source is null ? index : view.Source[index];
        if (source >= 0) _early!.Buffer.Read(source, dest);
        else _late!.Buffer.Read(~source, dest);
    }

    /// <summary>Releases the page contents (memory and spill files); the page lists and counts stay readable.</summary>
    public void Dispose()
    {
        View();
        _early?.Dispose();
        _late?.Dispose();
    }

    private Merged View()
    {
        if (_merged is not null) return _merged;
        if (_early is null) return _merged = new Merged([], [], null);
        if (_late is null) return _merged = new Merged(_early.NonZero, _early.Zero, null);
        // Union of both passes in page order; a page of the late pass wins. Source: early slot i, or ~(late slot j).
        var nonZero = new List<long>();
        var zero = new List<long>();
        var source = new List<int>();
        var early = _early.InOrder().GetEnumerator();
        var late = _late.InOrder().GetEnumerator();
        bool e = early.MoveNext(), l = late.MoveNext();
        while (e || l)
        {
            bool takeLate = l && (!e || late.Current.Page <= early.Current.Page);
            var (page, slot) = takeLate ? late.Current : early.Current;
            if (takeLate && e && early.Current.Page == page) e = early.MoveNext();
            if (slot is { } s)
            {
                nonZero.Add(page);
                source.Add(takeLate ? ~s : s);
            }
            else
            {
                zero.Add(page);
            }
            if (takeLate) l = late.MoveNext();
            else e = early.MoveNext();
        }
        return _merged = new Merged(nonZero, zero, [.. source]);
    }

    private sealed record Merged(IReadOnlyList<long> NonZero, IReadOnlyList<long> Zero, int[]? Source);

    /// <summary>One pass: a page buffer holding the non-zero pages in page order, and the zero pages.</summary>
    private sealed class Pass : IDisposable
    {
        private Pass(PageBuffer buffer) => Buffer = buffer;

        public PageBuffer Buffer { get; }
        public List<long> NonZero { get; } = [];
        public List<long> Zero { get; } = [];
        public long Count => NonZero.Count + Zero.Count;

        /// <summary>Every page of the pass in order: (page, buffer slot) or (page, null) for a zero page.</summary>
        public IEnumerable<(long Page, int? Slot)> InOrder()
        {
            int n = 0, z = 0;
            while (n < NonZero.Count || z < Zero.Count)
            {
                if (z >= Zero.Count || (n < NonZero.Count && NonZero[n] < Zero[z])) { yield return (NonZero[n], n); n++; }
                else yield return (Zero[z++], null);
            }
        }

        /// <summary>
        /// Reads <paramref name="pages"/> from the QEMU process in batches of up to <see cref="MaxRunPages"/> pages and
        /// <see cref="ProcessMemory.MaxRuns"/> runs per system call, straight into the page buffer, keeping the non-zero ones.
        /// </summary>
        public static Pass Read(GuestRamMapping mapping, IReadOnlyList<long> pages, long maxBufferedBytes, string spillPath,
            CancellationToken ct)
        {
            ArgumentNullException.ThrowIfNull(mapping);
            ArgumentNullException.ThrowIfNull(pages);
            var pass = new Pass(new PageBuffer(maxBufferedBytes, spillPath));
            try
            {
                pass.Fill(mapping, pages, ct);
                return pass;
            }
            catch
            {
                pass.Dispose();
                throw;
            }
        }

        private void Fill(GuestRamMapping mapping, IReadOnlyList<long> pages, CancellationToken ct)
        {
            using var mem = mapping.OpenMemory();
            var scratch = GC.AllocateUninitializedArray<byte>(MaxRunPages * PageSize, pinned: true);
            var remote = new ProcessMemory.IoVec[ProcessMemory.MaxRuns];
            int i = 0;
            while (i < pages.Count)
            {
                ct.ThrowIfCancellationRequested();
                var dest = Buffer.Reserve(MaxRunPages, scratch);
                int capacity = dest.Count / PageSize, filled = 0, runs = 0;
                while (filled < capacity && runs < remote.Length && i + filled < pages.Count)
                {
                    long first = pages[i + filled];
                    int n = 1;
                    while (filled + n < capacity && i + filled + n < pages.Count && pages[i + filled + n] == first + n) n++;
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
                        Zero.Add(pages[i + k]);
                        continue;
                    }
                    if (kept != k) page.CopyTo(span.Slice(kept * PageSize, PageSize));
                    kept++;
                    NonZero.Add(pages[i + k]);
                }
                Buffer.Commit(span, kept);
                i += filled;
            }
        }

        public void Dispose() => Buffer.Dispose();
    }
}
