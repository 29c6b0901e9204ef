using Bough.Agent.Native;

namespace Bough.Agent.Transport;

/// <summary>
/// Stream over a non-blocking character device fd (the virtio-serial port). Blocking reads/writes
/// on that device cannot be interrupted: a guest write blocks while no host is connected, and a
/// blocked write keeps the port open (it is exclusive), so the agent could never reopen it. Polling
/// with a short timeout lets cancellation and disposal end every call promptly.
/// POLLHUP without data means the host is gone: reads then return 0 (end of stream).
/// </summary>
internal sealed unsafe class FdStream(int fd) : Stream
{
    private const int PollSliceMs = 200;
    private volatile bool _disposed;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadCore(buffer.AsSpan(offset, count), CancellationToken.None);
    public override void Write(byte[] buffer, int offset, int count) => WriteCore(buffer.AsSpan(offset, count), CancellationToken.None);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
        new(Task.Run(() => ReadCore(buffer.Span, ct), CancellationToken.None));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) =>
        new(Task.Run(() => WriteCore(buffer.Span, ct), CancellationToken.None));

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

    private int ReadCore(Span<byte> buffer, CancellationToken ct)
    {
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            short revents = Wait(Libc.POLLIN, ct);
            if (revents == 0) continue;
            fixed (byte* p = buffer)
            {
                nint n = Libc.read(fd, p, buffer.Length);
                if (n >= 0) return (int)n;
                int errno = Libc.Errno;
                if (errno is Libc.EAGAIN or Libc.EINTR)
                {
                    if ((revents & Libc.POLLHUP) != 0) return 0;
                    continue;
                }
                throw new IOException($"read from port: {Libc.StrError(errno)}");
            }
        }
    }

    private void WriteCore(ReadOnlySpan<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            // While the host is disconnected the port is not writable; keep waiting until the
            // channel is cancelled (the reader sees the hangup and ends the session).
            if (Wait(Libc.POLLOUT, ct) == 0) continue;
            fixed (byte* p = buffer)
            {
                nint n = Libc.write(fd, p, buffer.Length);
                if (n > 0) { buffer = buffer[(int)n..]; continue; }
                int errno = Libc.Errno;
                if (n == 0 || errno is Libc.EAGAIN or Libc.EINTR) { Thread.Sleep(1); continue; }
                throw new IOException($"write to port: {Libc.StrError(errno)}");
            }
        }
    }

    /// <summary>Polls one slice; returns the revents (0 on timeout) and throws when cancelled or disposed.</summary>
    private short Wait(short events, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(_disposed, this);
        var pfd = new Libc.PollFd { Fd = fd, Events = events };
        int rc = Libc.poll(&pfd, 1, PollSliceMs);
        if (rc < 0)
        {
            int errno = Libc.Errno;
            if (errno == Libc.EINTR) return 0;
            throw new IOException($"poll on port: {Libc.StrError(errno)}");
        }
        if (rc == 0) return 0;
        // POLLNVAL: the fd was closed under the wait, which is this stream being disposed.
        ObjectDisposedException.ThrowIf((pfd.Revents & Libc.POLLNVAL) != 0, this);
        // POLLHUP alone on a write wait: the host is not connected; keep waiting.
        if (events == Libc.POLLOUT && (pfd.Revents & Libc.POLLOUT) == 0) { Thread.Sleep(50); return 0; }
        return pfd.Revents;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (!_disposed)
        {
            _disposed = true;
            // In-flight calls notice _disposed within one poll slice; closing only after that
            // would be cleaner, but the fd number may only be reused by our own next open.
            Thread.Sleep(PollSliceMs + 50);
            Libc.close(fd);
        }
        base.Dispose(disposing);
    }
}
