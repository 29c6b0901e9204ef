using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>Limits of the process table (agent options; the defaults are what docs/protocol.md states).</summary>
internal sealed record ProcessTableOptions
{
    /// <summary>Running processes the table holds at once (proc.start beyond it: too_large).</summary>
    public int MaxRunning { get; init; } = 256;
    /// <summary>Output one process keeps for readers that are not attached (the most recent bytes).</summary>
    public long BufferBytes { get; init; } = 1024 * 1024;
    /// <summary>All running processes' buffers together: each gets min(BufferBytes, TotalBufferBytes / running).</summary>
    public long TotalBufferBytes { get; init; } = 32L * 1024 * 1024;
    /// <summary>The share never drops below this, whatever the number of processes.</summary>
    public long MinBufferBytes { get; init; } = 64 * 1024;
    /// <summary>Exited processes remembered (exit status and output tail) for a late attach or list.</summary>
    public int ExitedKept { get; init; } = 16;
    /// <summary>Output tail kept of an exited process.</summary>
    public long ExitedBufferBytes { get; init; } = 64 * 1024;
}

/// <summary>
/// The processes started with proc.start. Lives in <see cref="AgentState"/>, so processes outlive
/// the stream and the session that started them; only an agent restart loses the table (the
/// processes then keep running unseen, reparented to init).
/// </summary>
/// <remarks>
/// Lock order: a process's lock may be held while taking the table's (exit), never the reverse:
/// the table only hands out references and never calls into a process under its own lock.
/// </remarks>
internal sealed class ProcessTable(ProcessTableOptions options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, ManagedProcess> _running = [];
    private readonly LinkedList<ManagedProcess> _exited = new();
    private readonly HashSet<string> _reservedTags = new(StringComparer.Ordinal);
    private int _reservedSlots;
    private volatile int _runningCount;

    public ProcessTableOptions Options { get; } = options;

    /// <summary>A place in the table held while a process is being spawned, so limits and tags are checked once.</summary>
    public sealed class Reservation(string? tag)
    {
        public string? Tag { get; } = tag;
    }

    /// <summary>Reserves a slot and the tag; throws too_large when full, already_exists for a tag in use by a running process.</summary>
    public Reservation Reserve(string? tag)
    {
        lock (_lock)
        {
            if (_running.Count + _reservedSlots >= Options.MaxRunning)
                throw new AgentError(ErrorCodes.TooLarge, $"the process table is full ({Options.MaxRunning} running processes)");
            if (tag != null)
            {
                if (_reservedTags.Contains(tag) || _running.Values.Any(p => p.Tag == tag))
                    throw new AgentError(ErrorCodes.AlreadyExists, $"a running process already has the tag '{tag}'");
                _reservedTags.Add(tag);
                // An exited process with the tag is forgotten: the tag names the new one now.
                for (var n = _exited.First; n != null; n = n.Next)
                    if (n.Value.Tag == tag) { _exited.Remove(n); break; }
            }
            _reservedSlots++;
            return new Reservation(tag);
        }
    }

    public void Release(Reservation reservation)
    {
        lock (_lock)
        {
            _reservedSlots--;
            if (reservation.Tag != null) _reservedTags.Remove(reservation.Tag);
        }
    }

    /// <summary>Turns the reservation into a running entry (a remembered exited process with the recycled pid is forgotten).</summary>
    public void Commit(Reservation reservation, ManagedProcess process)
    {
        lock (_lock)
        {
            _reservedSlots--;
            if (reservation.Tag != null) _reservedTags.Remove(reservation.Tag);
            for (var n = _exited.First; n != null; n = n.Next)
                if (n.Value.Pid == process.Pid) { _exited.Remove(n); break; }
            _running[process.Pid] = process;
            _runningCount = _running.Count;
        }
    }

    /// <summary>Called once by a process when it has finished: it moves to the short list of exited ones.</summary>
    public void OnExited(ManagedProcess process)
    {
        lock (_lock)
        {
            if (_running.TryGetValue(process.Pid, out var p) && p == process) _running.Remove(process.Pid);
            _runningCount = _running.Count;
            _exited.AddLast(process);
            while (_exited.Count > Options.ExitedKept) _exited.RemoveFirst();
        }
    }

    /// <summary>The bytes a process may buffer now: a share of the total, between the minimum and the per-process cap.</summary>
    public long OutputCapacity(bool exited) => exited
        ? Options.ExitedBufferBytes
        : Math.Clamp(Options.TotalBufferBytes / Math.Max(1, _runningCount), Options.MinBufferBytes, Options.BufferBytes);

    /// <summary>The process a selector names: running first, then remembered exited ones (newest first).</summary>
    public ManagedProcess Find(ProcessSelectorDto? selector)
    {
        if (selector == null || (selector.Pid == null) == (selector.Tag == null))
            throw new AgentError(ErrorCodes.BadRequest, "select the process by exactly one of pid and tag");
        lock (_lock)
        {
            ManagedProcess? found = selector.Pid is { } pid
                ? _running.GetValueOrDefault(pid) ?? _exited.LastOrDefault(p => p.Pid == pid)
                : _running.Values.FirstOrDefault(p => p.Tag == selector.Tag) ?? _exited.LastOrDefault(p => p.Tag == selector.Tag);
            return found ?? throw new AgentError(ErrorCodes.NotFound,
                selector.Pid is { } p2 ? $"no process with pid {p2}" : $"no process with tag '{selector.Tag}'");
        }
    }

    /// <summary>The running processes (oldest first), then the remembered exited ones when asked.</summary>
    public IReadOnlyList<ManagedProcess> Snapshot(bool includeExited)
    {
        lock (_lock)
        {
            var list = _running.Values.OrderBy(p => p.StartedAtMs).ThenBy(p => p.Pid).ToList();
            if (includeExited) list.AddRange(_exited);
            return list;
        }
    }
}
