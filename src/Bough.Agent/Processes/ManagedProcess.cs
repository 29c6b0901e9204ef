using System.Diagnostics;
using Bough.Agent.Native;
using Bough.Agent.Operations;
using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>A reader of a process's output: its own cursor into the <see cref="OutputLog"/>.</summary>
internal sealed class Attachment
{
    public long Cursor;
}

/// <summary>Bytes for a process's stdin (or terminal), completed once the I/O thread wrote all of them.</summary>
internal sealed class InputChunk(byte[] data)
{
    public byte[] Data { get; } = data;
    public int Written;
    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// One process of the table: what it was started with, its output log with the attached readers'
/// cursors, its stdin queue, and its end. Output flows I/O thread → log → attached streams; an
/// attached reader that falls a buffer behind stops the I/O thread from reading (so the process
/// blocks on its pipe, as with exec), while output nobody is attached to just evicts the oldest.
/// </summary>
/// <remarks>
/// Killing and reaping share <see cref="_lock"/>: the I/O thread reaps with waitpid under it, so a
/// kill(-pgid) can never hit a recycled process group. File descriptors belong to the I/O thread;
/// the only one used from outside is the pty master (resize), closed under the same lock.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable",
    Justification = "The lifetime timer (and the WakeFd) end with the process, in Finish and the I/O thread: an entry is never "
        + "disposed by its holders, it is forgotten by the table once it has ended.")]
internal sealed class ManagedProcess
{
    private readonly Lock _lock = new();
    private readonly ProcessTable _table;
    private readonly OutputLog _log = new();
    private readonly List<Attachment> _attached = [];
    private readonly Queue<InputChunk> _input = new();
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private StdinState _stdin;
    private int _masterFd;
    private PtySizeDto? _ptySize;
    private bool _reaped, _timedOut, _waitingForRoom;
    private int _status;
    private long _durationMs;
    private ExitDto? _exit;
    private Timer? _lifetime;

    private enum StdinState { None, Open, CloseRequested, Closed }

    public ManagedProcess(ProcessTable table, int pid, ProcessStartRequest request, PreparedCommand command, int masterFd)
    {
        _table = table;
        Pid = pid;
        Tag = request.Tag;
        Argv = [.. request.Argv];
        Env = request.Env == null ? null : new Dictionary<string, string>(request.Env, StringComparer.Ordinal);
        Cwd = command.Cwd;
        User = command.UserSpec;
        StartedAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _masterFd = masterFd;
        IsPty = masterFd >= 0;
        _ptySize = IsPty ? new PtySizeDto { Cols = request.Pty!.Cols, Rows = request.Pty.Rows } : null;
        _stdin = IsPty || request.Stdin ? StdinState.Open : StdinState.None;
    }

    public int Pid { get; }
    public string? Tag { get; }
    public IReadOnlyList<string> Argv { get; }
    public IReadOnlyDictionary<string, string>? Env { get; }
    public string Cwd { get; }
    public string? User { get; }
    public long StartedAtMs { get; }
    public bool IsPty { get; }

    /// <summary>Pulsed on new output and at the end; attached streams wait on it.</summary>
    public AsyncPulse Changed { get; } = new();

    /// <summary>Wakes the I/O thread (input queued, room made, stdin close requested).</summary>
    public WakeFd Wake { get; } = new();

    public ExitDto? Exit { get { lock (_lock) return _exit; } }

    // ------------------------------------------------------------------ attached readers

    /// <summary>Adds a reader at the oldest retained byte (<paramref name="replay"/>) or at the end; <paramref name="skipped"/> = bytes already evicted.</summary>
    public Attachment Attach(bool replay, out long skipped)
    {
        lock (_lock)
        {
            var a = new Attachment { Cursor = replay ? _log.Start : _log.End };
            skipped = replay ? _log.Start : 0;
            _attached.Add(a);
            return a;
        }
    }

    public void Detach(Attachment a)
    {
        bool wake;
        lock (_lock)
        {
            _attached.Remove(a);
            _log.Evict(Capacity(), MinCursor());
            wake = _waitingForRoom;
        }
        if (wake) Wake.Signal();
    }

    public bool TryRead(Attachment a, int max, out DataChannel channel, out ArraySegment<byte> data)
    {
        lock (_lock) return _log.TryRead(a.Cursor, max, out channel, out data);
    }

    /// <summary>The reader sent <paramref name="bytes"/>; the I/O thread may have been waiting for that room.</summary>
    public void Advance(Attachment a, int bytes)
    {
        bool wake;
        lock (_lock)
        {
            a.Cursor += bytes;
            wake = _waitingForRoom;
            if (_exit != null) _log.Evict(Capacity(), MinCursor());
        }
        if (wake) Wake.Signal();
    }

    /// <summary>True when the process has ended and the reader has everything.</summary>
    public bool IsDrained(Attachment a)
    {
        lock (_lock) return _exit != null && a.Cursor >= _log.End;
    }

    // ------------------------------------------------------------------ control

    /// <summary>Sends a signal to the process group (or just the process); false once it has been reaped.</summary>
    public bool Signal(int signal, bool group, bool timedOut = false)
    {
        lock (_lock)
        {
            if (_reaped) return false;
            if (timedOut) _timedOut = true;
            Libc.kill(group ? -Pid : Pid, signal);
            return true;
        }
    }

    /// <summary>Kills the group when the lifetime limit elapses, attached or not.</summary>
    public void StartLifetime(long? timeoutMs)
    {
        if (timeoutMs is not { } ms) return;
        lock (_lock)
        {
            if (_exit == null) _lifetime = new Timer(_ => Signal(Libc.SIGKILL, group: true, timedOut: true), null, ms, Timeout.Infinite);
        }
    }

    public void Resize(int cols, int rows)
    {
        lock (_lock)
        {
            if (!IsPty) throw new AgentError(ErrorCodes.BadRequest, $"process {Pid} has no terminal");
            if (_masterFd < 0) throw new AgentError(ErrorCodes.NotFound, $"process {Pid} has exited");
            int err = Pty.Resize(_masterFd, cols, rows);
            if (err != 0) throw AgentError.FromErrno(err, "TIOCSWINSZ", $"pid {Pid}");
            _ptySize = new PtySizeDto { Cols = cols, Rows = rows };
        }
    }

    /// <summary>Queues bytes for stdin (or the terminal) and completes when the process's pipe took them all.</summary>
    public Task WriteInputAsync(byte[] data, CancellationToken ct)
    {
        var chunk = new InputChunk(data);
        lock (_lock)
        {
            if (_exit != null || _reaped) throw new AgentError(ErrorCodes.NotFound, $"process {Pid} has exited");
            if (_stdin != StdinState.Open)
                throw new AgentError(ErrorCodes.BadRequest, _stdin == StdinState.None
                    ? $"process {Pid} was started without stdin" : $"stdin of process {Pid} is closed");
            _input.Enqueue(chunk);
        }
        Wake.Signal();
        return chunk.Done.Task.WaitAsync(ct);
    }

    /// <summary>Closes stdin once the queued input is written (the process then reads EOF).</summary>
    public void CloseStdin()
    {
        lock (_lock)
        {
            if (_exit != null) throw new AgentError(ErrorCodes.NotFound, $"process {Pid} has exited");
            if (IsPty) throw new AgentError(ErrorCodes.BadRequest, $"process {Pid} runs on a terminal; send ^D (0x04) as input instead");
            if (_stdin == StdinState.None) throw new AgentError(ErrorCodes.BadRequest, $"process {Pid} was started without stdin");
            if (_stdin == StdinState.Open) _stdin = StdinState.CloseRequested;
        }
        Wake.Signal();
    }

    // ------------------------------------------------------------------ the I/O thread's side

    /// <summary>Whether the I/O thread may read more output now; when not, the next reader progress wakes it.</summary>
    internal bool HasRoomForOutput()
    {
        lock (_lock)
        {
            long capacity = Capacity();
            long min = MinCursor();
            _log.Evict(capacity, min);
            // Full: make room for one more read if the readers have moved on (evicting only down to the
            // capacity would leave "full" forever once a caught-up reader waits for more output).
            if (_log.Cost >= capacity) _log.Evict(Math.Max(0, capacity - ProtocolConstants.MaxDataChunk), min);
            _waitingForRoom = _log.Cost >= capacity;
            return !_waitingForRoom;
        }
    }

    internal void AppendOutput(DataChannel channel, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            _log.Append(channel, data);
            _log.Evict(Capacity(), MinCursor());
        }
        Changed.Pulse();
    }

    internal bool TryPeekInput(out InputChunk? chunk)
    {
        lock (_lock) return _input.TryPeek(out chunk);
    }

    internal void InputWritten()
    {
        InputChunk done;
        lock (_lock) done = _input.Dequeue();
        done.Done.TrySetResult();
    }

    /// <summary>The process closed its end (or ended): queued input fails, later input is refused.</summary>
    internal void StdinGone(string why)
    {
        List<InputChunk> failed;
        lock (_lock)
        {
            if (_stdin != StdinState.None) _stdin = StdinState.Closed;
            failed = [.. _input];
            _input.Clear();
        }
        foreach (var c in failed) c.Done.TrySetException(new AgentError(ErrorCodes.BadRequest, why));
    }

    internal bool StdinCloseRequested
    {
        get { lock (_lock) return _stdin == StdinState.CloseRequested && _input.Count == 0; }
    }

    /// <summary>waitpid(WNOHANG) under the kill lock; true once the process is reaped.</summary>
    internal unsafe bool TryReap()
    {
        lock (_lock)
        {
            if (_reaped) return true;
            int status = 0;
            int rc;
            while ((rc = Libc.waitpid(Pid, &status, 1 /* WNOHANG */)) < 0 && Libc.Errno == Libc.EINTR) { }
            if (rc == 0) return false;
            _status = rc == Pid ? status : 0;
            _reaped = true;
            _durationMs = _watch.ElapsedMilliseconds;
            return true;
        }
    }

    internal void CloseMaster()
    {
        lock (_lock)
        {
            if (_masterFd >= 0) Libc.close(_masterFd);
            _masterFd = -1;
        }
    }

    /// <summary>Everything is read and every descriptor closed: publish the exit to readers and the table.</summary>
    internal void Finish()
    {
        StdinGone($"process {Pid} has exited");
        lock (_lock)
        {
            int termSig = _status & 0x7f;
            bool signaled = termSig != 0 && termSig != 0x7f;
            _exit = new ExitDto
            {
                ExitCode = signaled ? 128 + termSig : (_status >> 8) & 0xff,
                Signal = signaled ? termSig : null,
                TimedOut = _timedOut,
                DurationMs = _durationMs,
            };
            _lifetime?.Dispose();
            _lifetime = null;
            _table.OnExited(this);
            _log.Evict(Capacity(), MinCursor());
        }
        Changed.Pulse();
    }

    public ProcessInfoDto ToInfo()
    {
        lock (_lock)
        {
            return new ProcessInfoDto
            {
                Pid = Pid, Tag = Tag, Argv = [.. Argv], Env = Env == null ? null : new Dictionary<string, string>(Env),
                Cwd = Cwd, User = User, StartedAtMs = StartedAtMs, Exit = _exit,
                Pty = _ptySize == null ? null : new PtySizeDto { Cols = _ptySize.Cols, Rows = _ptySize.Rows },
                StdinOpen = _exit == null && _stdin == StdinState.Open,
            };
        }
    }

    private long Capacity() => _table.OutputCapacity(exited: _exit != null);

    private long MinCursor()
    {
        long min = _log.End;
        foreach (var a in _attached) min = Math.Min(min, a.Cursor);
        return min;
    }
}
