namespace Bough.Protocol;

/// <summary>
/// Serialises frames onto a shared byte stream. A frame is written with one call so frames never
/// interleave. The caller's token only bounds the wait for the write lock: cancelling in the middle
/// of a frame would corrupt the channel, so the write itself is bounded by <paramref name="lifetime"/>
/// (the connection's own token), after which the writer is permanently broken.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
    Justification = "The SemaphoreSlim is never asked for its wait handle, so it holds nothing to free; disposing it "
        + "while another writer still waits would turn the channel's clean IOException into ObjectDisposedException.")]
public sealed class FrameWriter(Stream stream, CancellationToken lifetime)
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private volatile bool _broken;

    /// <summary>
    /// Writes one frame. <paramref name="canWrite"/> is checked while holding the lock; returning false
    /// drops the frame (the agent uses it to fence off writers of a session that was replaced).
    /// Returns whether the frame was written.
    /// </summary>
    public async ValueTask<bool> WriteAsync(FrameType type, ushort flags, uint streamId, ReadOnlyMemory<byte> payload,
        CancellationToken ct, Func<bool>? canWrite = null)
    {
        if (payload.Length > ProtocolConstants.MaxPayload) throw new ArgumentException("payload too large", nameof(payload));
        int total = ProtocolConstants.HeaderSize + payload.Length;
        byte[] frame = System.Buffers.ArrayPool<byte>.Shared.Rent(total);
        try
        {
            new FrameHeader(type, flags, streamId, payload.Length).Write(frame);
            payload.Span.CopyTo(frame.AsSpan(ProtocolConstants.HeaderSize));
            await _lock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (_broken) throw new IOException("channel writer is broken");
                if (canWrite != null && !canWrite()) return false;
                try
                {
                    await stream.WriteAsync(frame.AsMemory(0, total), lifetime).ConfigureAwait(false);
                }
                catch
                {
                    _broken = true;
                    throw;
                }
                return true;
            }
            finally
            {
                _lock.Release();
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(frame);
        }
    }

    /// <summary>Writes a WINDOW frame granting <paramref name="increment"/> bytes.</summary>
    public ValueTask<bool> WriteWindowAsync(uint streamId, int increment, CancellationToken ct, Func<bool>? canWrite = null)
    {
        var payload = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)increment);
        return WriteAsync(FrameType.Window, 0, streamId, payload, ct, canWrite);
    }
}
