namespace Bough.Agent.Native;

/// <summary>
/// An eventfd a poll loop includes in its set so other threads can wake it (new input, credit,
/// a cancel). Signal is safe from any thread at any time: once the owner closed it, the number
/// could already belong to another file, so signals after Close are dropped under the lock.
/// </summary>
internal sealed unsafe class WakeFd : IDisposable
{
    private readonly Lock _lock = new();
    private bool _closed;

    public WakeFd()
    {
        Fd = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (Fd < 0) throw AgentError.FromErrno(Libc.Errno, "eventfd", "");
    }

    public int Fd { get; }

    public void Signal()
    {
        lock (_lock)
        {
            if (_closed) return;
            ulong one = 1;
            Libc.write(Fd, (byte*)&one, 8);
        }
    }

    /// <summary>Resets the counter after poll reported it readable.</summary>
    public void Drain()
    {
        ulong v;
        Libc.read(Fd, (byte*)&v, 8);
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for a signal and consumes it.</summary>
    public void Wait(int timeoutMs)
    {
        var pfd = new Libc.PollFd { Fd = Fd, Events = Libc.POLLIN };
        if (Libc.poll(&pfd, 1, timeoutMs) > 0) Drain();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            Libc.close(Fd);
        }
    }
}
