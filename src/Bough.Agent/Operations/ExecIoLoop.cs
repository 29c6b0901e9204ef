using System.Diagnostics;
using Bough.Agent.Native;
using Bough.Protocol;

namespace Bough.Agent.Operations;

/// <summary>
/// Moves bytes between one running command and its stream, on a dedicated thread around poll(2):
/// stdout/stderr are read only while the host has granted credit (so a slow consumer stalls the
/// command through its pipe instead of growing memory), stdin chunks from the host are written as
/// the pipe accepts them, and an eventfd wakes the loop for new credit, input, or exit.
///
/// The exec ends when the main process exits, not at EOF of its pipes: a background process may
/// hold stdout open forever. After the exit, what is already in the pipes is drained (read until
/// EAGAIN) and then the pipes are closed.
///
/// A separate waiter thread uses waitid(WNOWAIT) so the process stays a zombie until reaped under
/// the kill lock: kill(-pgid) can therefore never hit a recycled process group id.
/// </summary>
internal sealed class ExecIoLoop
{
    private const int ChunkSize = ProtocolConstants.MaxDataChunk;

    private readonly AgentStream _stream;
    private readonly SpawnedProcess _process;
    private readonly long? _timeoutMs;
    private readonly Stopwatch _watch;
    private readonly object _killLock = new();
    private readonly TaskCompletionSource<ExitDto> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _wakeFd;
    private readonly object _wakeLock = new();
    private bool _wakeClosed;
    private bool _reaped;
    private volatile bool _exited;
    private volatile bool _timedOut;
    private int _status;
    private long _durationMs;
    private bool _abandoned;

    public ExecIoLoop(AgentStream stream, SpawnedProcess process, long? timeoutMs, Stopwatch watch)
    {
        _stream = stream;
        _process = process;
        _timeoutMs = timeoutMs;
        _watch = watch;
        _wakeFd = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_wakeFd < 0) throw AgentError.FromErrno(Libc.Errno, "eventfd", "");
    }

    public async Task<ExitDto> RunAsync()
    {
        _stream.SetWake(Wake);
        await using var cancelReg = _stream.Token.Register(KillGroup);
        using var timeout = _timeoutMs is { } ms ? new Timer(_ => Kill(timedOut: true), null, ms, Timeout.Infinite) : null;

        try
        {
            // Tell the host the pid (= process group) before any output, so it can correlate.
            await _stream.SendReplyAsync(new ReplyMessage { Pid = _process.Pid }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            _abandoned = true;
            KillGroup();
        }
        var waiter = new Thread(WaitForExit) { IsBackground = true, Name = $"exec-wait-{_process.Pid}" };
        var io = new Thread(IoThread) { IsBackground = true, Name = $"exec-io-{_process.Pid}" };
        waiter.Start();
        io.Start();
        return await _done.Task.ConfigureAwait(false);
    }

    /// <summary>Safe from any thread at any time: after the loop closed the eventfd its number could belong to another file.</summary>
    private unsafe void Wake()
    {
        lock (_wakeLock)
        {
            if (_wakeClosed) return;
            ulong one = 1;
            Libc.write(_wakeFd, (byte*)&one, 8);
        }
    }

    private void CloseWake()
    {
        lock (_wakeLock)
        {
            _wakeClosed = true;
            Libc.close(_wakeFd);
        }
    }

    private void KillGroup() => Kill(timedOut: false);

    private void Kill(bool timedOut)
    {
        lock (_killLock)
        {
            if (_reaped) return;
            if (timedOut) _timedOut = true;
            Libc.kill(-_process.Pid, Libc.SIGKILL);
        }
    }

    private unsafe void WaitForExit()
    {
        byte* info = stackalloc byte[256];
        while (Libc.waitid(Libc.P_PID, (uint)_process.Pid, info, Libc.WEXITED | Libc.WNOWAIT) != 0 && Libc.Errno == Libc.EINTR) { }
        lock (_killLock)
        {
            int status = 0;
            while (Libc.waitpid(_process.Pid, &status, 0) < 0 && Libc.Errno == Libc.EINTR) { }
            _status = status;
            _reaped = true;
            _durationMs = _watch.ElapsedMilliseconds;
        }
        _exited = true;
        Wake();
    }

    private unsafe void IoThread()
    {
        var outFds = new[] { _process.StdoutRead, _process.StderrRead };
        int stdinFd = _process.StdinWrite;
        byte[] buffer = new byte[ChunkSize];
        byte[]? pending = null;
        int pendingOffset = 0;
        var fds = stackalloc Libc.PollFd[4];
        try
        {
            while (true)
            {
                // Feed stdin: take the next chunk, or close the pipe once the host sent EOF.
                if (stdinFd >= 0 && pending == null)
                {
                    if (_stream.Input.TryRead(out var chunk)) { pending = chunk; pendingOffset = 0; }
                    else if (_stream.Input.Completion.IsCompleted) { Libc.close(stdinFd); stdinFd = -1; }
                }
                if (_exited) break;

                int n = 0;
                fds[n++] = new Libc.PollFd { Fd = _wakeFd, Events = Libc.POLLIN };
                bool haveCredit = _abandoned || _stream.SendCredit.Available > 0;
                for (int i = 0; i < 2; i++)
                    if (outFds[i] >= 0 && haveCredit) fds[n++] = new Libc.PollFd { Fd = outFds[i], Events = Libc.POLLIN };
                if (stdinFd >= 0 && pending != null) fds[n++] = new Libc.PollFd { Fd = stdinFd, Events = Libc.POLLOUT };
                if (Libc.poll(fds, (nuint)n, -1) < 0 && Libc.Errno != Libc.EINTR)
                    throw new IOException($"poll: {Libc.StrError(Libc.Errno)}");

                for (int j = 0; j < n; j++)
                {
                    if (fds[j].Revents == 0) continue;
                    int fd = fds[j].Fd;
                    if (fd == _wakeFd) { ulong v; Libc.read(_wakeFd, (byte*)&v, 8); }
                    else if (fd == stdinFd)
                    {
                        if (!WriteStdin(stdinFd, ref pending, ref pendingOffset)) { Libc.close(stdinFd); stdinFd = -1; DiscardInput(ref pending); }
                    }
                    else
                    {
                        int idx = fd == outFds[0] ? 0 : 1;
                        if (PumpOnce(fd, (DataChannel)(idx + 1), buffer) == PumpResult.Eof) { Libc.close(fd); outFds[idx] = -1; }
                    }
                }
            }

            // The main process is gone: forward what is already buffered in the pipes, then stop,
            // even if a background process still holds their write ends.
            for (int i = 0; i < 2; i++)
            {
                while (outFds[i] >= 0 && !_abandoned && !_stream.Token.IsCancellationRequested)
                {
                    var r = PumpOnce(outFds[i], (DataChannel)(i + 1), buffer);
                    if (r is PumpResult.Eof or PumpResult.Empty) break;
                    if (r == PumpResult.NoCredit) WaitForWake();
                }
            }
        }
        catch (Exception e)
        {
            _stream.Log.Warn($"stream {_stream.Id}: exec I/O failed: {e.Message}");
            _abandoned = true;
            KillGroup();
            while (!_exited) WaitForWake();
        }
        finally
        {
            foreach (int fd in outFds) if (fd >= 0) Libc.close(fd);
            if (stdinFd >= 0) Libc.close(stdinFd);
            CloseWake();
        }
        _done.TrySetResult(ExitResult());
    }

    private enum PumpResult { Data, Empty, Eof, NoCredit }

    /// <summary>Reads at most as much as the host's credit allows and forwards it.</summary>
    private unsafe PumpResult PumpOnce(int fd, DataChannel channel, byte[] buffer)
    {
        int credit = _abandoned ? ChunkSize : _stream.SendCredit.TryAcquire(ChunkSize);
        if (credit == 0) return PumpResult.NoCredit;
        nint n;
        fixed (byte* p = buffer) n = Libc.read(fd, p, credit);
        if (n <= 0)
        {
            if (!_abandoned) _stream.SendCredit.Return(credit);
            if (n == 0) return PumpResult.Eof;
            int errno = Libc.Errno;
            return errno is Libc.EAGAIN or Libc.EINTR ? PumpResult.Empty : PumpResult.Eof;
        }
        if (_abandoned) return PumpResult.Data;
        _stream.SendCredit.Return(credit - (int)n);
        try
        {
            _stream.SendDataBlocking(channel, buffer.AsMemory(0, (int)n));
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The host or the session is gone; the process is being killed. Keep draining so it never blocks.
            _abandoned = true;
        }
        return PumpResult.Data;
    }

    /// <summary>Writes as much of the pending chunk as the pipe takes; false when the command closed stdin.</summary>
    private unsafe bool WriteStdin(int fd, ref byte[]? pending, ref int offset)
    {
        nint n;
        fixed (byte* p = pending) n = Libc.write(fd, p + offset, pending!.Length - offset);
        if (n < 0)
        {
            int errno = Libc.Errno;
            return errno is Libc.EAGAIN or Libc.EINTR;
        }
        offset += (int)n;
        if (offset == pending.Length)
        {
            Grant(pending.Length);
            pending = null;
        }
        return true;
    }

    /// <summary>Stdin was closed by the command: drop queued input but keep granting credit so the host's sender finishes.</summary>
    private void DiscardInput(ref byte[]? pending)
    {
        if (pending != null) Grant(pending.Length);
        pending = null;
        while (_stream.Input.TryRead(out var chunk)) Grant(chunk.Length);
    }

    private void Grant(int bytes)
    {
        if (_abandoned) return;
        try { _stream.ConsumedBlocking(bytes, flush: _stream.Input.Count == 0); }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { _abandoned = true; }
    }

    private unsafe void WaitForWake()
    {
        var pfd = new Libc.PollFd { Fd = _wakeFd, Events = Libc.POLLIN };
        if (Libc.poll(&pfd, 1, 1000) > 0) { ulong v; Libc.read(_wakeFd, (byte*)&v, 8); }
    }

    private ExitDto ExitResult()
    {
        int termSig = _status & 0x7f;
        bool signaled = termSig != 0 && termSig != 0x7f;
        return new ExitDto
        {
            ExitCode = signaled ? 128 + termSig : (_status >> 8) & 0xff,
            Signal = signaled ? termSig : null,
            TimedOut = _timedOut,
            DurationMs = _durationMs,
        };
    }
}
