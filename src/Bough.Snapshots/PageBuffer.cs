using Microsoft.Win32.SafeHandles;

namespace Bough.Snapshots;

/// <summary>
/// Where the pages copied out of a stopped VM go: process memory in 4 MiB chunks up to a budget, then a
/// spill file. Memory first because the copy happens while the guest is paused: writing into the page
/// cache there costs as much as reading the pages and can stall on dirty-page throttling, whereas a
/// memcpy cannot. Pages are appended in order and read back by index after the VM runs again. Chunks are pinned, so
/// another process's memory can be read straight into them (<see cref="ProcessMemory"/>).
/// </summary>
internal sealed class PageBuffer : IDisposable
{
    public const int PageSize = GuestRamMapping.PageSize;
    private const int ChunkPages = 1024;
    private readonly List<byte[]> _chunks = [];
    private readonly long _memoryPages;
    private readonly string _spillPath;
    private SafeFileHandle? _spill;

    public PageBuffer(long maxMemoryBytes, string spillPath)
    {
        _memoryPages = Math.Max(0, maxMemoryBytes / PageSize);
        _spillPath = spillPath;
    }

    public long Count { get; private set; }
    public long SpilledPages => Math.Max(0, Count - _memoryPages);

    /// <summary>
    /// Space for up to <paramref name="pages"/> pages at the end of the buffer, to read into directly
    /// (may be fewer; never empty): a slice of a pinned chunk, or of <paramref name="scratch"/> (pinned by the caller)
    /// once the memory budget is spent. Commit what was kept with <see cref="Commit"/>.
    /// </summary>
    public ArraySegment<byte> Reserve(int pages, byte[] scratch)
    {
        if (Count < _memoryPages)
        {
            int slot = (int)(Count % ChunkPages);
            if (slot == 0 && Count / ChunkPages == _chunks.Count)
                _chunks.Add(GC.AllocateUninitializedArray<byte>(ChunkPages * PageSize, pinned: true));
            int room = (int)Math.Min(ChunkPages - slot, _memoryPages - Count);
            int n = Math.Min(pages, room);
            return new ArraySegment<byte>(_chunks[(int)(Count / ChunkPages)], slot * PageSize, n * PageSize);
        }
        return new ArraySegment<byte>(scratch, 0, Math.Min(pages, scratch.Length / PageSize) * PageSize);
    }

    /// <summary>Appends the first <paramref name="pages"/> pages of a span returned by <see cref="Reserve"/>.</summary>
    public void Commit(ReadOnlySpan<byte> reserved, int pages)
    {
        if (pages == 0) return;
        if (Count >= _memoryPages)
        {
            _spill ??= File.OpenHandle(_spillPath, FileMode.CreateNew, FileAccess.ReadWrite);
            RandomAccess.Write(_spill, reserved[..(pages * PageSize)], (Count - _memoryPages) * PageSize);
        }
        Count += pages;
    }

    /// <summary>Copies page <paramref name="index"/> into <paramref name="dest"/> (one page).</summary>
    public void Read(long index, Span<byte> dest)
    {
        if (index < _memoryPages)
        {
            _chunks[(int)(index / ChunkPages)].AsSpan((int)(index % ChunkPages) * PageSize, PageSize).CopyTo(dest);
            return;
        }
        GuestRamMapping.ReadExactly(_spill!, dest[..PageSize], (index - _memoryPages) * PageSize, "spilled pages");
    }

    public void Dispose()
    {
        _spill?.Dispose();
        _chunks.Clear();
        try { File.Delete(_spillPath); } catch (IOException) { }
    }
}
