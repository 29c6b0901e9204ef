using System.IO.MemoryMappedFiles;

namespace Bough.Snapshots.Tests;

/// <summary>Fast tests without a VM: the header format, the page buffer and the pagemap scan on this process.</summary>
public sealed class FormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bough-snap-format-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public void Header_round_trips_and_detects_corruption()
    {
        var h = new MemoryHeader(1000, ["a", "b", "c"]);
        h.Ordinals[1] = MemoryHeader.OwnOrdinal; h.Slots[1] = 0;
        h.Ordinals[2] = 2; h.Slots[2] = 7;       // "a"
        h.Ordinals[999] = 4; h.Slots[999] = 42;  // "c"
        h.PruneUnusedLayers();
        Assert.Equal(["a", "c"], h.AncestorLayers);
        Assert.Equal((ushort)3, h.Ordinals[999]);
        string path = Path.Combine(_dir, "memory.header");
        h.Write(path);
        Assert.Equal(28 + 2 * 3 + 6 * 1000 + 32, new FileInfo(path).Length);

        var back = MemoryHeader.Read(path);
        Assert.Equal(1000, back.PageCount);
        Assert.Equal(["a", "c"], back.AncestorLayers);
        Assert.Equal(h.Ordinals, back.Ordinals);
        Assert.Equal(h.Slots, back.Slots);
        Assert.Equal(3, back.CountNonZero());
        Assert.Equal("c", back.LayerId(back.Ordinals[999]));

        var bytes = File.ReadAllBytes(path);
        bytes[100] ^= 1;
        File.WriteAllBytes(path, bytes);
        Assert.Throws<SnapshotException>(() => MemoryHeader.Read(path));
    }

    [Fact]
    public void Page_buffer_keeps_order_across_memory_and_spill_file()
    {
        const int P = PageBuffer.PageSize;
        string spill = Path.Combine(_dir, "spill");
        var scratch = new byte[16 * P];
        using (var buffer = new PageBuffer(3 * P, spill))
        {
            for (int round = 0; round < 3; round++)
            {
                var span = buffer.Reserve(4, scratch).AsSpan();
                int n = span.Length / P;
                for (int k = 0; k < n; k++) span.Slice(k * P, P).Fill((byte)(buffer.Count + k + 1));
                buffer.Commit(span, n);
            }
            Assert.True(buffer.SpilledPages > 0);
            var page = new byte[P];
            for (long i = 0; i < buffer.Count; i++)
            {
                buffer.Read(i, page);
                Assert.True(page.All(b => b == (byte)(i + 1)), $"page {i}");
            }
        }
        Assert.False(File.Exists(spill));
    }

    /// <summary>
    /// The pagemap scan on a private file mapping of this very process: exactly the written pages are
    /// "changed" (pages only read stay file pages), and /proc/self/mem returns what was written.
    /// </summary>
    [Fact]
    public void Pagemap_scan_finds_exactly_the_written_pages_of_a_private_mapping()
    {
        const int P = GuestRamMapping.PageSize;
        string file = Path.Combine(_dir, "ram");
        using (var fs = new FileStream(file, FileMode.CreateNew)) fs.SetLength(64 * P);
        using var mmf = MemoryMappedFile.CreateFromFile(file, FileMode.Open, null, 0, MemoryMappedFileAccess.CopyOnWrite);
        using var view = mmf.CreateViewAccessor(0, 64 * P, MemoryMappedFileAccess.CopyOnWrite);
        for (int p = 0; p < 64; p++) view.ReadByte((long)p * P); // fault every page in as a file page
        long[] written = [0, 5, 6, 63];
        foreach (long p in written) view.Write(p * P + 17, (byte)(p + 1));

        var mapping = GuestRamMapping.Find(Environment.ProcessId, file);
        Assert.Equal(64, mapping.PageCount);
        Assert.Equal(written, mapping.ChangedPages());
        using var mem = mapping.OpenMemory();
        var page = new byte[P];
        GuestRamMapping.ReadExactly(mem, page, (long)mapping.AddressOf(5), "self");
        Assert.Equal(6, page[17]);
        Assert.Equal(new byte[64 * P], File.ReadAllBytes(file)); // the file itself never changes
    }
}
