using Bough.Agent.Native;
using Bough.Agent.Operations;
using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>
/// The one thread per table process, around poll(2): reads stdout/stderr (or the pty master) into
/// the process's log while it has room, writes queued input as the pipe accepts it, closes stdin
/// on request, and notices the exit through a pidfd (or, on kernels without pidfd_open, a 100 ms
/// waitpid(WNOHANG) tick). As with exec, the process is over when its main process exits: what is
/// already in the pipes is then drained (at most <see cref="MaxDrainBytes"/>, even past the log's
/// bound, since a background child could keep writing forever) and the descriptors are closed.
/// </summary>
internal sealed unsafe class ProcessIo
{
    private const int ChunkSize = ProtocolConstants.MaxDataChunk;

    /// <summary>Upper bound of what is read after the main process exited (pipe buffers hold at most 1 MiB each).</summary>
    public const int MaxDrainBytes = 2 * 1024 * 1024;

    private readonly ManagedProcess _process;
    private readonly AgentLog _log;
    private readonly int[] _out; // stdout, stderr; for a pty [master, -1]
    private int _stdin;          // pipe write end; for a pty the master (same descriptor as _out[0])
    private int _pidFd;
    private bool _terminalHungUp;

    public ProcessIo(ManagedProcess process, SpawnedProcess spawned, int masterFd, AgentLog log)
    {
        _process = process;
        _log = log;
        _out = masterFd >= 0 ? [masterFd, -1] : [spawned.StdoutRead, spawned.StderrRead];
        _stdin = masterFd >= 0 ? masterFd : spawned.StdinWrite;
        _pidFd = (int)Libc.syscall(Libc.SYS_pidfd_open, process.Pid, 0); // always close-on-exec
    }

    public void Start() => new Thread(Run) { IsBackground = true, Name = $"proc-io-{_process.Pid}" }.Start();

    private bool IsPty => _process.IsPty;

    private void Run()
    {
        var buffer = new byte[ChunkSize];
        var fds = stackalloc Libc.PollFd[5];
        try
        {
            while (!_process.TryReap())
            {
                if (!IsPty && _stdin >= 0 && _process.StdinCloseRequested) CloseStdin("stdin closed");
                bool room = _process.HasRoomForOutput();
                bool pending = _stdin >= 0 && !_terminalHungUp && _process.TryPeekInput(out _);
                int n = 0;
                fds[n++] = new Libc.PollFd { Fd = _process.Wake.Fd, Events = Libc.POLLIN };
                if (_pidFd >= 0) fds[n++] = new Libc.PollFd { Fd = _pidFd, Events = Libc.POLLIN };
                for (int i = 0; i < 2; i++)
                {
                    short events = (short)((room ? Libc.POLLIN : 0) | (IsPty && pending ? Libc.POLLOUT : 0));
                    if (_out[i] >= 0 && events != 0) fds[n++] = new Libc.PollFd { Fd = _out[i], Events = events };
                }
                if (!IsPty && pending) fds[n++] = new Libc.PollFd { Fd = _stdin, Events = Libc.POLLOUT };
                if (Libc.poll(fds, (nuint)n, _pidFd >= 0 ? -1 : 100) < 0 && Libc.Errno != Libc.EINTR)
                    throw new IOException($"poll: {Libc.StrError(Libc.Errno)}");
                for (int j = 0; j < n; j++)
                {
                    var (fd, revents, events) = (fds[j].Fd, fds[j].Revents, fds[j].Events);
                    if (revents == 0) continue;
                    if (fd == _process.Wake.Fd) _process.Wake.Drain();
                    else if (fd == _pidFd) continue; // TryReap at the top of the loop
                    else if (fd == _out[0] || fd == _out[1])
                    {
                        if ((events & Libc.POLLIN) != 0) ReadOnce(fd == _out[0] ? 0 : 1, buffer);
                        else if (IsPty && (revents & (Libc.POLLHUP | Libc.POLLERR)) != 0) TerminalHungUp();
                        if (IsPty && _out[0] >= 0 && (revents & Libc.POLLOUT) != 0) WriteInput();
                    }
                    else if (fd == _stdin) WriteInput();
                }
            }
            Drain(buffer);
        }
        catch (Exception e)
        {
            _log.Warn($"process {_process.Pid}: I/O failed, killing it: {e.Message}");
            _process.Signal(Libc.SIGKILL, group: true);
            while (!_process.TryReap()) _process.Wake.Wait(100);
        }
        finally
        {
            if (!IsPty && _stdin >= 0) Libc.close(_stdin);
            if (!IsPty && _out[0] >= 0) Libc.close(_out[0]);
            if (_out[1] >= 0) Libc.close(_out[1]);
            if (IsPty) _process.CloseMaster();
            if (_pidFd >= 0) Libc.close(_pidFd);
            _process.Finish();
            _process.Wake.Dispose();
        }
    }

    /// <summary>Reads one chunk into the log; closes the descriptor at EOF (EIO on a pty master: every slave is closed).</summary>
    private int ReadOnce(int index, byte[] buffer)
    {
        int fd = _out[index];
        nint n;
        fixed (byte* p = buffer) n = Libc.read(fd, p, buffer.Length);
        if (n > 0)
        {
            _process.AppendOutput(index == 0 ? DataChannel.Stdout : DataChannel.Stderr, buffer.AsSpan(0, (int)n));
            return (int)n;
        }
        if (n < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR) return 0;
        if (IsPty) TerminalHungUp();
        else Libc.close(fd);
        _out[index] = -1;
        return -1;
    }

    /// <summary>The terminal has no slave holder left: input cannot reach anyone.</summary>
    private void TerminalHungUp()
    {
        if (_terminalHungUp) return;
        _terminalHungUp = true;
        _process.StdinGone("the terminal was hung up");
    }

    /// <summary>Writes as much of the head input chunk as the pipe (or terminal) takes.</summary>
    private void WriteInput()
    {
        if (_stdin < 0 || !_process.TryPeekInput(out var chunk) || chunk == null) return;
        nint n;
        fixed (byte* p = chunk.Data) n = Libc.write(_stdin, p + chunk.Written, chunk.Data.Length - chunk.Written);
        if (n < 0)
        {
            if (Libc.Errno is Libc.EAGAIN or Libc.EINTR) return;
            if (IsPty) TerminalHungUp();
            else CloseStdin("the process closed its stdin");
            return;
        }
        chunk.Written += (int)n;
        if (chunk.Written == chunk.Data.Length) _process.InputWritten();
    }

    private void CloseStdin(string why)
    {
        Libc.close(_stdin);
        _stdin = -1;
        _process.StdinGone(why);
    }

    /// <summary>After the main process exited: read what the pipes already hold, bounded, then stop.</summary>
    private void Drain(byte[] buffer)
    {
        long drained = 0;
        for (int i = 0; i < 2; i++)
        {
            while (_out[i] >= 0 && drained < MaxDrainBytes)
            {
                int n = ReadOnce(i, buffer);
                if (n <= 0) break;
                drained += n;
            }
        }
    }
}
