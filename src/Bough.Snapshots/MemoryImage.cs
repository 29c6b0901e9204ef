using Microsoft.Win32.SafeHandles;

namespace Bough.Snapshots;

/// <summary>
/// Builds <c>memory.img</c> files. An image is never modified once it has its final name, because
/// running VMs map it private: with <c>MAP_PRIVATE</c>, pages a VM has not written still follow
/// the file, so a change would leak into live guests. New images are written under a temporary
/// name, synced, and renamed into place.
/// </summary>
public static class MemoryImage
{
    private const int PageSize = GuestRamMapping.PageSize;
    private const int CopyChunk = 1 << 20;

    /// <summary>
    /// Returns the path of the snapshot's memory.img, rebuilding it from the layers (through the
    /// header) if it is missing, e.g. after a cache eviction. Safe to race: the last rename wins and
    /// every candidate has identical content.
    /// </summary>
    public static string Ensure(SnapshotRef snapshot)
    {
        string path = Path.Combine(snapshot.Dir, SnapshotFiles.Image);
        if (File.Exists(path)) return path;
        var header = MemoryHeader.Read(Path.Combine(snapshot.Dir, SnapshotFiles.Header));
        string tmp = Path.Combine(snapshot.Dir, $".{SnapshotFiles.Image}.{Guid.NewGuid():N}.tmp");
        try
        {
            BuildFromLayers(snapshot, header, tmp);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
        return path;
    }

    /// <summary>Writes a sparse image of <paramref name="header"/>'s content (non-zero pages only) to <paramref name="dest"/>.</summary>
    internal static void BuildFromLayers(SnapshotRef snapshot, MemoryHeader header, string dest)
    {
        using var layers = new LayerSet(snapshot, header);
        using var output = File.OpenHandle(dest, FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.SetLength(output, header.PageCount * PageSize);
        var buffer = new byte[CopyChunk];
        ForEachRun(header, (page, ordinal, slot, count) =>
        {
            var span = buffer.AsSpan(0, count * PageSize);
            GuestRamMapping.ReadExactly(layers.Get(ordinal), span, (long)slot * PageSize, $"layer {ordinal} of {snapshot.Id}");
            RandomAccess.Write(output, span, page * PageSize);
        });
        NativeFs.FSync(output);
    }

    /// <summary>
    /// Calls <paramref name="run"/> for maximal runs of non-zero pages that are consecutive both in the
    /// guest and in one layer (so each run is one read and one write), capped at 1 MiB.
    /// </summary>
    internal static void ForEachRun(MemoryHeader header, Action<long, ushort, uint, int> run)
    {
        const int MaxRun = CopyChunk / PageSize;
        long p = 0;
        while (p < header.PageCount)
        {
            ushort o = header.Ordinals[p];
            if (o == MemoryHeader.ZeroOrdinal) { p++; continue; }
            uint s = header.Slots[p];
            int n = 1;
            while (n < MaxRun && p + n < header.PageCount && header.Ordinals[p + n] == o && header.Slots[p + n] == s + (uint)n) n++;
            run(p, o, s, n);
            p += n;
        }
    }

    /// <summary>Hole-preserving copy of the first <paramref name="length"/> bytes of a file (data extents only).</summary>
    internal static void SparseCopy(string source, SafeFileHandle dest, long length)
    {
        using var src = File.OpenHandle(source, FileMode.Open, FileAccess.Read);
        var buffer = new byte[CopyChunk];
        foreach (var (start, end) in NativeFs.DataExtents(src, length))
        {
            for (long pos = start; pos < end;)
            {
                int n = (int)Math.Min(buffer.Length, end - pos);
                int read = RandomAccess.Read(src, buffer.AsSpan(0, n), pos);
                if (read <= 0) break;
                var chunk = buffer.AsSpan(0, read);
                // Extents are filesystem blocks; keep all-zero stretches as holes anyway.
                if (chunk.IndexOfAnyExcept((byte)0) >= 0) RandomAccess.Write(dest, chunk, pos);
                pos += read;
            }
        }
    }

    /// <summary>Open layer files of a header, by ordinal (1 = the snapshot's own, ≥ 2 = ancestors, siblings by id).</summary>
    internal sealed class LayerSet : IDisposable
    {
        private readonly SafeFileHandle?[] _handles;
        private readonly SnapshotRef _owner;
        private readonly MemoryHeader _header;

        public LayerSet(SnapshotRef owner, MemoryHeader header)
        {
            _owner = owner;
            _header = header;
            _handles = new SafeFileHandle?[header.AncestorLayers.Count + 2];
        }

        public string PathOf(ushort ordinal) => ordinal == MemoryHeader.OwnOrdinal
            ? Path.Combine(_owner.Dir, SnapshotFiles.Layer)
            : Path.Combine(_owner.SiblingDir(_header.LayerId(ordinal)), SnapshotFiles.Layer);

        public SafeFileHandle Get(ushort ordinal)
        {
            if (_handles[ordinal] is { } h) return h;
            string path = PathOf(ordinal);
            if (!File.Exists(path))
                throw new SnapshotException($"Snapshot {_owner.Id} needs memory layer {path}, which is missing.");
            return _handles[ordinal] = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        }

        public void Dispose()
        {
            foreach (var h in _handles) h?.Dispose();
        }
    }
}
