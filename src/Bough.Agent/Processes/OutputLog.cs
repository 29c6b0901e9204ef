using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>
/// The recent output of one process: chunks tagged with their channel, addressed by absolute byte
/// offsets since the process started, so every attached reader keeps its own cursor and a reader
/// that connects later starts from whatever is still retained.
/// </summary>
/// <remarks>
/// The cost of what is retained is its bytes plus <see cref="ChunkOverhead"/> per chunk, so a
/// process writing single bytes cannot make a small byte count cost a lot of memory; small
/// chunks of the same channel are coalesced. Not thread-safe: the owning process locks it.
/// </remarks>
internal sealed class OutputLog
{
    /// <summary>What one retained chunk is charged besides its bytes (array header, list slot, fields).</summary>
    public const int ChunkOverhead = 64;

    /// <summary>Consecutive chunks of one channel are merged while the result stays this small.</summary>
    private const int CoalesceLimit = 4096;

    private readonly List<Chunk> _chunks = [];
    private int _head; // _chunks[.._head] are evicted slots, compacted now and then

    /// <summary>Offset of the oldest retained byte.</summary>
    public long Start { get; private set; }

    /// <summary>Offset just past the newest byte (= total bytes ever appended).</summary>
    public long End { get; private set; }

    /// <summary>Retained bytes plus chunk overheads.</summary>
    public long Cost => End - Start + (long)(_chunks.Count - _head) * ChunkOverhead;

    public void Append(DataChannel channel, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        if (_chunks.Count > _head && _chunks[^1] is { } tail && tail.Channel == channel
            && tail.Length + data.Length <= CoalesceLimit && tail.Offset == 0)
        {
            var merged = new byte[tail.Length + data.Length];
            tail.Data.AsSpan(0, tail.Length).CopyTo(merged);
            data.CopyTo(merged.AsSpan(tail.Length));
            _chunks[^1] = new Chunk(tail.Start, channel, merged, 0, merged.Length);
        }
        else _chunks.Add(new Chunk(End, channel, data.ToArray(), 0, data.Length));
        End += data.Length;
    }

    /// <summary>
    /// Drops the oldest bytes while <see cref="Cost"/> exceeds <paramref name="capacity"/>, but never
    /// at or past <paramref name="keepFrom"/> (the slowest attached reader's cursor).
    /// </summary>
    public void Evict(long capacity, long keepFrom)
    {
        while (Cost > capacity && _head < _chunks.Count && Start < keepFrom)
        {
            var c = _chunks[_head]; // the head chunk always begins at Start
            long drop = Math.Min(Cost - capacity, Math.Min(keepFrom - Start, c.Length));
            if (drop == c.Length)
            {
                _chunks[_head++] = default;
                Start += c.Length;
            }
            else
            {
                _chunks[_head] = c with { Start = c.Start + drop, Offset = c.Offset + (int)drop, Length = c.Length - (int)drop };
                Start += drop;
            }
        }
        if (_head > 64 && _head * 2 > _chunks.Count)
        {
            _chunks.RemoveRange(0, _head);
            _head = 0;
        }
    }

    /// <summary>
    /// The retained bytes at <paramref name="cursor"/> (clamped up to <see cref="Start"/>), from one
    /// chunk and at most <paramref name="max"/> of them. The segment's array is never written again,
    /// so it may be used after the lock is released.
    /// </summary>
    public bool TryRead(long cursor, int max, out DataChannel channel, out ArraySegment<byte> data)
    {
        channel = default;
        data = default;
        if (cursor < Start) cursor = Start;
        if (cursor >= End) return false;
        int lo = _head, hi = _chunks.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (_chunks[mid].Start <= cursor) lo = mid;
            else hi = mid - 1;
        }
        var c = _chunks[lo];
        int skip = (int)(cursor - c.Start);
        channel = c.Channel;
        data = new ArraySegment<byte>(c.Data, c.Offset + skip, Math.Min(max, c.Length - skip));
        return true;
    }

    private readonly record struct Chunk(long Start, DataChannel Channel, byte[] Data, int Offset, int Length);
}
