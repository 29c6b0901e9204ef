using Bough.Agent.Native;

namespace Bough.Agent.Transport;

/// <summary>
/// Stream over a non-blocking character device fd (the virtio-serial port). Blocking reads/writes
/// on that device cannot be interrupted: a guest write blocks while no host is connected, and a
/// blocked write keeps the port open (it is exclusive), so the agent could never reopen it.
/// Every wait polls the port together with an eventfd that disposal and cancellation signal, so
/// cancellation and disposal end every call promptly while an idle agent sleeps in poll(2) without
/// a timeout: under TCG each guest wakeup is host CPU, and a timed poll slice woke the idle agent
/// five times a second (docs/benchmarks.md, idle children).
/// The eventfd is never drained: once signalled, the stream is ending (the channel uses one token,
/// its lifetime, for every call), and later waits fall back to short timed slices on the port alone.
/// POLLHUP without data means the host is gone: reads then return 0 (end of stream).
/// </summary>
internal sealed unsafe class FdStream(int fd) : Stream
{
    /// <summary>The wait slice once the wake fd is signalled (it stays readable, so it can no longer be polled).</summary>
    private const int PollSliceMs = 200;
    private readonly WakeFd _wake = new();
    private int _disposed;
    private int _woken;
    private int _waiting;

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

    /// <summary>
    /// Waits until the port is ready, the call is cancelled or the stream disposed; returns the revents (0 when woken
    /// for another reason, so the caller loops and re-checks) and throws when cancelled or disposed.
    /// </summary>
    private short Wait(short events, CancellationToken ct)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            ct.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            using var registration = ct.CanBeCanceled ? ct.UnsafeRegister(static s => ((FdStream)s!).WakeAll(), this) : default;
            var pfds = stackalloc Libc.PollFd[2];
            pfds[0] = new Libc.PollFd { Fd = fd, Events = events };
            pfds[1] = new Libc.PollFd { Fd = _wake.Fd, Events = Libc.POLLIN };
            int rc = Volatile.Read(ref _woken) != 0 ? Libc.poll(pfds, 1, PollSliceMs) : Libc.poll(pfds, 2, -1);
            if (rc < 0)
            {
                int errno = Libc.Errno;
                if (errno == Libc.EINTR) return 0;
                throw new IOException($"poll on port: {Libc.StrError(errno)}");
            }
            short revents = pfds[0].Revents;
            if (rc == 0 || revents == 0) return 0;
            // POLLNVAL: the fd was closed under the wait, which is this stream being disposed.
            ObjectDisposedException.ThrowIf((revents & Libc.POLLNVAL) != 0, this);
            // POLLHUP alone on a write wait: the host is not connected; keep waiting.
            if (events == Libc.POLLOUT && (revents & Libc.POLLOUT) == 0) { Thread.Sleep(50); return 0; }
            return revents;
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>Ends every wait in progress, now and later (the wake fd stays readable).</summary>
    private void WakeAll()
    {
        Volatile.Write(ref _woken, 1);
        _wake.Signal();
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            WakeAll();
            // The fd number may only be reused by our own next open once no call still polls it: in-flight waits
            // return at once (the wake fd is readable), so this loop is short; a call stuck elsewhere for longer
            // than the bound is the only case in which the fd is closed under it (it then sees POLLNVAL or EBADF).
            for (int i = 0; i < 500 && Volatile.Read(ref _waiting) > 0; i++) Thread.Sleep(1);
            Libc.close(fd);
            _wake.Dispose();
        }
        base.Dispose(disposing);
    }
}
