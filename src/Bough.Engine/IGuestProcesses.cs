using Bough.Contracts;

namespace Bough.Engine;

/// <summary>
/// A sandbox's process table (background processes, pseudo-terminals) and the file operations
/// beyond read/write/list/delete (stat, mkdir, move, watch, deep listings). Bough's own API and
/// the E2B adapter both sit on it.
/// </summary>
/// <remarks>
/// Every method validates its input (400 <c>invalid_request</c>/<c>invalid_path</c>) and reports
/// failures as <see cref="BoughException"/> with a stable code: unknown sandbox 404, not running 409,
/// unknown or exited process 404 <c>process_not_found</c>, a guest agent that predates the feature
/// (a sandbox from an old image or snapshot) 501 <c>guest_unsupported</c>. Like exec, none of these
/// take a lifecycle lease: a delete or pause closes the agent channel under them, which ends them
/// with 503 <c>agent_unavailable</c>. Processes belong to the guest, not to the call: they outlive
/// the request, the stream and the connection that started them.
/// </remarks>
public interface IGuestProcesses
{
    /// <summary>Starts a process in the background; returns it as listed (pid, tag, argv, ...).</summary>
    Task<GuestProcess> StartAsync(string id, ProcessStart start, CancellationToken ct);

    /// <summary>
    /// Starts a process and streams its output from the first byte (what E2B's Start does). Ending
    /// the enumeration only detaches; <see cref="ProcessAttach.Deadline"/> is what kills it.
    /// </summary>
    IAsyncEnumerable<ProcessStreamItem> StartAttachedAsync(string id, ProcessStart start, ProcessAttach attach, CancellationToken ct);

    /// <summary>
    /// Streams a process's output: one <see cref="ProcessStreamKind.Started"/>, the buffered output
    /// (unless <see cref="ProcessAttach.Replay"/> is false), live output, keepalives while idle when
    /// asked, and one <see cref="ProcessStreamKind.Exit"/>. Ending the enumeration detaches; the
    /// process runs on. A slow consumer holds the process back (lossless while attached).
    /// </summary>
    IAsyncEnumerable<ProcessStreamItem> AttachAsync(string id, ProcessRef process, ProcessAttach attach, CancellationToken ct);

    /// <summary>The running processes (oldest first), and with <paramref name="includeExited"/> the few exited ones the guest remembers.</summary>
    Task<IReadOnlyList<GuestProcess>> ListAsync(string id, bool includeExited, CancellationToken ct);

    /// <summary>One process, running or recently exited; 404 <c>process_not_found</c> otherwise.</summary>
    Task<GuestProcess> GetAsync(string id, ProcessRef process, CancellationToken ct);

    /// <summary>Streams <paramref name="input"/> (to its end; the caller keeps it) to the process's stdin or terminal; returns once the process's pipe took it all.</summary>
    Task SendInputAsync(string id, ProcessRef process, Stream input, CancellationToken ct);

    /// <summary>Closes stdin after the input already sent. A terminal has none (400: send 0x04 instead).</summary>
    Task CloseStdinAsync(string id, ProcessRef process, CancellationToken ct);

    /// <summary>Sends <paramref name="signal"/> (1..64) to the process group; 404 when the process is unknown or has exited.</summary>
    Task SignalAsync(string id, ProcessRef process, int signal, CancellationToken ct);

    /// <summary>Resizes a terminal process's terminal; the process gets SIGWINCH.</summary>
    Task ResizeAsync(string id, ProcessRef process, TerminalSize size, CancellationToken ct);

    /// <summary>Metadata of a path; symlinks are not followed.</summary>
    Task<FileEntry> StatAsync(string id, string path, CancellationToken ct);

    /// <summary>Whether a path exists (a dangling symlink does).</summary>
    Task<bool> ExistsAsync(string id, string path, CancellationToken ct);

    /// <summary>mkdir -p; true when created, false when the directory already existed. An existing non-directory: 409.</summary>
    Task<bool> MkdirAsync(string id, string path, CancellationToken ct);

    /// <summary>rename(2) within the guest; returns the entry at its new place.</summary>
    Task<FileEntry> MoveAsync(string id, string source, string destination, CancellationToken ct);

    /// <summary>
    /// Watches a directory (inotify): <see cref="FileChangeKind.Started"/> once in place, then
    /// changes. Ends when the caller stops, or when the directory itself is removed or moved.
    /// Lost events (nobody consumed) end it with 502 <c>guest_error</c>: rescan and watch again.
    /// </summary>
    IAsyncEnumerable<FileChange> WatchAsync(string id, string path, bool recursive, TimeSpan? keepalive, CancellationToken ct);

    /// <summary>Lists a directory down to <paramref name="depth"/> levels (1..64); entries carry their absolute path.</summary>
    Task<IReadOnlyList<FileEntry>> ListFilesAsync(string id, string path, int depth, CancellationToken ct);
}

/// <summary>What to start. Argv runs directly (no shell); cwd, user and env as for exec.</summary>
public sealed record ProcessStart(
    IReadOnlyList<string> Argv,
    IReadOnlyDictionary<string, string>? Env = null,
    string? Cwd = null,
    string? User = null,
    string? Tag = null,
    bool Stdin = false,
    TerminalSize? Pty = null,
    TimeSpan? Timeout = null);

/// <summary>Names a process of a sandbox's table, by pid or by tag.</summary>
public sealed record ProcessRef
{
    private ProcessRef(int? pid, string? tag)
    {
        Pid = pid;
        Tag = tag;
    }

    public int? Pid { get; }
    public string? Tag { get; }

    /// <summary>Validated by the engine (pid &gt; 0) so that API input reaches it unchecked.</summary>
    public static ProcessRef ByPid(int pid) => new(pid, null);

    public static ProcessRef ByTag(string tag) => new(null, tag);

    public override string ToString() => Pid is { } p ? $"process {p}" : $"process tagged '{Tag}'";
}

/// <summary>How an output stream behaves: replay the buffered output, a deadline that kills the process if still attached, keepalives while idle.</summary>
public sealed record ProcessAttach(bool Replay = true, TimeSpan? Deadline = null, TimeSpan? Keepalive = null);

public enum ProcessStreamKind { Started, Stdout, Stderr, Pty, Keepalive, Exit }

/// <summary>One item of a process's output stream; <see cref="Exit"/> is set on the last one.</summary>
public sealed record ProcessStreamItem(
    ProcessStreamKind Kind,
    ReadOnlyMemory<byte> Data = default,
    int Pid = 0,
    bool Pty = false,
    long Skipped = 0,
    ProcessExitStatus? Exit = null);

public enum FileChangeKind { Started, Create, Write, Remove, Rename, Chmod, Keepalive }

/// <summary>One item of a watch; <see cref="Name"/> is relative to the watched directory.</summary>
public sealed record FileChange(FileChangeKind Kind, string? Name = null);
