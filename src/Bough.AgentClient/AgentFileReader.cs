using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>
/// An open guest file. <see cref="Length"/> is the size when the agent opened it; <see cref="Content"/>
/// yields the bytes the agent reads until end of file (which can differ for growing files or /proc).
/// Dispose early to cancel the transfer.
/// </summary>
public sealed class AgentFileReader : IAsyncDisposable, IDisposable
{
    private readonly AgentConnection _connection;
    private readonly ClientStream _stream;

    internal AgentFileReader(AgentConnection connection, ClientStream stream, long length, int mode, DateTimeOffset modifiedAt)
    {
        _connection = connection;
        _stream = stream;
        Length = length;
        Mode = mode;
        ModifiedAt = modifiedAt;
        Content = new ContentStream(this);
    }

    public long Length { get; }
    public int Mode { get; }
    public DateTimeOffset ModifiedAt { get; }
    public Stream Content { get; }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public void Dispose() => _connection.Abandon(_stream);

    private sealed class ContentStream(AgentFileReader owner) : Stream
    {
        private byte[] _chunk = [];
        private int _offset;
        private bool _eof;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => owner.Length;
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (buffer.IsEmpty) return 0;
            while (_offset == _chunk.Length)
            {
                if (_eof) return 0;
                if (_chunk.Length > 0) owner._connection.Consumed(owner._stream, _chunk.Length);
                _chunk = [];
                _offset = 0;
                StreamItem item;
                try { item = await owner._stream.NextAsync(ct).ConfigureAwait(false); }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { owner.Dispose(); throw; }
                if (item.Type == FrameType.End)
                {
                    _eof = true;
                    if (item.End!.Error is { } e) throw new AgentException(e.Code, e.Message);
                    return 0;
                }
                _chunk = item.Data;
            }
            int n = Math.Min(buffer.Length, _chunk.Length - _offset);
            _chunk.AsMemory(_offset, n).CopyTo(buffer);
            _offset += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override int Read(byte[] buffer, int offset, int count) =>
            ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        protected override void Dispose(bool disposing)
        {
            if (disposing) owner.Dispose();
            base.Dispose(disposing);
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
