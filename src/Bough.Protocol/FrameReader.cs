namespace Bough.Protocol;

/// <summary>
/// Reads frames from a byte stream. Buffered so that the handshake scanner can look for the magic
/// in junk and hand the bytes that follow a match to the strict reader without losing any.
/// Never allocates more than <see cref="ProtocolConstants.MaxPayload"/> for one frame.
/// </summary>
public sealed class FrameReader(Stream stream)
{
    private readonly byte[] _buffer = new byte[128 * 1024];
    private int _start;
    private int _end;

    /// <summary>Bytes skipped by <see cref="ScanAsync"/> so far.</summary>
    public long DiscardedBytes { get; private set; }

    private int Buffered => _end - _start;

    /// <summary>Ensures at least <paramref name="count"/> bytes are buffered; false on end of stream.</summary>
    private async ValueTask<bool> FillAsync(int count, CancellationToken ct)
    {
        while (Buffered < count)
        {
            if (_buffer.Length - _start < count)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, Buffered);
                _end = Buffered;
                _start = 0;
            }
            int n = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (n <= 0) return false;
            _end += n;
        }
        return true;
    }

    /// <summary>
    /// Reads the next frame strictly: anything malformed throws <see cref="ProtocolException"/>.
    /// Returns null on a clean end of stream at a frame boundary.
    /// </summary>
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken ct)
    {
        if (!await FillAsync(ProtocolConstants.HeaderSize, ct).ConfigureAwait(false))
        {
            if (Buffered == 0) return null;
            throw new ProtocolException("stream ended inside a frame header");
        }
        string? error = FrameHeader.TryParse(_buffer.AsSpan(_start, ProtocolConstants.HeaderSize), out var header);
        if (error != null) throw new ProtocolException(error);
        _start += ProtocolConstants.HeaderSize;
        return new Frame(header, await ReadPayloadAsync(header.Length, ct).ConfigureAwait(false));
    }

    private async ValueTask<byte[]> ReadPayloadAsync(int length, CancellationToken ct)
    {
        if (length == 0) return [];
        var payload = new byte[length];
        int copied = Math.Min(length, Buffered);
        Buffer.BlockCopy(_buffer, _start, payload, 0, copied);
        _start += copied;
        if (copied < length)
        {
            // Large payloads go straight into their own array instead of through the buffer.
            await stream.ReadExactlyAsync(payload.AsMemory(copied), ct).ConfigureAwait(false);
        }
        return payload;
    }

    /// <summary>
    /// Skips junk until a well-formed frame whose header satisfies <paramref name="accept"/> and whose
    /// payload is at most <paramref name="maxPayload"/> bytes, and returns it. Used while no session is
    /// established (stale bytes of an earlier session may precede the answer). Throws
    /// <see cref="ProtocolException"/> once more than <paramref name="maxDiscard"/> bytes were skipped;
    /// returns null at end of stream.
    /// </summary>
    public async ValueTask<Frame?> ScanAsync(Func<FrameHeader, bool> accept, int maxPayload, long maxDiscard, CancellationToken ct)
    {
        while (true)
        {
            if (DiscardedBytes > maxDiscard) throw new ProtocolException($"no valid frame within {maxDiscard} bytes");
            if (!await FillAsync(ProtocolConstants.HeaderSize, ct).ConfigureAwait(false)) return null;
            if (!TryMatchCandidate(accept, maxPayload, out var header)) continue;
            if (!await FillAsync(ProtocolConstants.HeaderSize + header.Length, ct).ConfigureAwait(false)) return null;
            _start += ProtocolConstants.HeaderSize;
            var payload = _buffer.AsSpan(_start, header.Length).ToArray();
            _start += header.Length;
            return new Frame(header, payload);
        }
    }

    /// <summary>Discards junk before the next magic; true when an acceptable header starts the buffer.</summary>
    private bool TryMatchCandidate(Func<FrameHeader, bool> accept, int maxPayload, out FrameHeader header)
    {
        header = default;
        var magic = ProtocolConstants.Magic;
        var window = _buffer.AsSpan(_start, Buffered);
        int at = window.IndexOf(magic);
        if (at < 0)
        {
            // Keep a possible partial magic at the end of the buffer.
            Discard(Buffered - (magic.Length - 1));
            return false;
        }
        if (at > 0) { Discard(at); return false; }
        if (FrameHeader.TryParse(window[..ProtocolConstants.HeaderSize], out header) != null
            || header.Length > maxPayload || !accept(header))
        {
            Discard(1);
            return false;
        }
        return true;
    }

    /// <summary>Lets the caller count a frame it rejected after <see cref="ScanAsync"/> as junk.</summary>
    public void CountDiscarded(long bytes) => DiscardedBytes += bytes;

    private void Discard(int count)
    {
        _start += count;
        DiscardedBytes += count;
    }
}
