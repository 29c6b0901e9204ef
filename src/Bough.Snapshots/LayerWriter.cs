using Microsoft.Win32.SafeHandles;

namespace Bough.Snapshots;

/// <summary>
/// After the VM runs again: turns the pages a capture copied into the snapshot's memory files, the page table
/// and layer (deduplicated against the parent) and memory.img. Touches only the staging directory.
/// </summary>
internal static class LayerWriter
{
    private const int PageSize = GuestRamMapping.PageSize;
    private const int MaxRunPages = CopiedPages.MaxRunPages;

    /// <summary>
    /// Page table of the new snapshot. Unchanged pages keep the memory base's entries (or zero);
    /// changed zero pages are zero; changed pages equal to the parent's page keep the parent's entry;
    /// the rest go into this snapshot's layer, written here.
    /// </summary>
    public static MemoryHeader WriteLayer(long pageCount, SnapshotRef? memoryBase, SnapshotRef? parent, CopiedPages pages,
        string staging, out long stored, out long deduped)
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
        foreach (long p in pages.Zero)
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
            for (int i = 0; i < pages.NonZero.Count; i++)
            {
                long p = pages.NonZero[i];
                var page = output.AsSpan(outPages * PageSize, PageSize);
                pages.Read(i, page);
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
    public static void WriteImage(string vmMemoryFile, long length, CopiedPages pages, string dest)
    {
        string tmp = dest + ".tmp";
        using (var img = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(img, length);
            MemoryImage.SparseCopy(vmMemoryFile, img, length);
            var run = new byte[MaxRunPages * PageSize];
            var nonZero = pages.NonZero;
            for (int i = 0; i < nonZero.Count;)
            {
                long first = nonZero[i];
                int n = 1;
                while (n < MaxRunPages && i + n < nonZero.Count && nonZero[i + n] == first + n) n++;
                for (int k = 0; k < n; k++) pages.Read(i + k, run.AsSpan(k * PageSize, PageSize));
                RandomAccess.Write(img, run.AsSpan(0, n * PageSize), first * PageSize);
                i += n;
            }
            var zero = new byte[PageSize];
            var zeros = pages.Zero;
            for (int i = 0; i < zeros.Count;)
            {
                long first = zeros[i];
                int n = 1;
                while (i + n < zeros.Count && zeros[i + n] == first + n) n++;
                if (!NativeFs.TryPunchHole(img, first * PageSize, (long)n * PageSize))
                    for (int k = 0; k < n; k++) RandomAccess.Write(img, zero, (first + k) * PageSize);
                i += n;
            }
            NativeFs.FSync(img);
        }
        File.Move(tmp, dest);
    }
}
