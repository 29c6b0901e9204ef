using Bough.AgentClient;

namespace Bough.Engine.Sandboxes;

/// <summary>
/// A read-only pass-through over a guest file stream that turns agent failures mid-download
/// into <see cref="BoughException"/>s, so the HTTP layer sees one error type.
/// </summary>
internal sealed class AgentErrorTranslatingStream(Stream inner, IAsyncDisposable owner, Func<AgentException, BoughException> translate) : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count)
    {
        try { return inner.Read(buffer, offset, count); }
        catch (AgentException ex) { throw translate(ex); }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        try { return await inner.ReadAsync(buffer, ct); }
        catch (AgentException ex) { throw translate(ex); }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing) owner.DisposeAsync().AsTask().GetAwaiter().GetResult();
        base.Dispose(disposing);
    }

    /// <summary>Disposing releases the whole guest read (the agent stream), not just this view.</summary>
    public override async ValueTask DisposeAsync()
    {
        await owner.DisposeAsync();
        await base.DisposeAsync();
    }
}
