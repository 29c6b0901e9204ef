using System.Text.Json;

namespace Bough.Contracts;

/// <summary>
/// POST /v1/sandboxes/{id}/processes: a background process of the guest's process table. Unlike
/// exec, it belongs to the sandbox, not to the request: it runs on when the client goes away, and
/// its output can be attached to (and replayed) later.
/// </summary>
public sealed record StartProcessRequest
{
    /// <summary>argv, executed directly (no shell): <c>["sh","-c","..."]</c> for a command line.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyDictionary<string, string>? Env { get; init; }
    /// <summary>Absolute working directory; default the image's WorkingDir, else /root.</summary>
    public string? Cwd { get; init; }
    /// <summary>name, uid, name:group or uid:gid; default the image's User.</summary>
    public string? User { get; init; }
    /// <summary>A name (1..256 characters) unique among running processes.</summary>
    public string? Tag { get; init; }
    /// <summary>True: stdin is a pipe fed by POST .../stdin until closed. False (default): /dev/null. A terminal always takes input.</summary>
    public bool? Stdin { get; init; }
    /// <summary>Run on a pseudo-terminal of this size (output then comes as one <c>pty</c> stream).</summary>
    public TerminalSize? Pty { get; init; }
    /// <summary>Lifetime: when it elapses the process group is killed (exit reports timedOut).</summary>
    public double? TimeoutSeconds { get; init; }
}

/// <summary>A terminal size in character cells, 1..4096 each.</summary>
public sealed record TerminalSize(int Cols, int Rows);

/// <summary>How a process ended. <c>exitCode</c> is 128 + <c>signal</c> when a signal killed it.</summary>
public sealed record ProcessExitStatus(int ExitCode, int? Signal, bool TimedOut, long DurationMs);

/// <summary>A process of a sandbox's table. <c>env</c> is what its start added, not the merged environment.</summary>
public sealed record GuestProcess
{
    public int Pid { get; init; }
    public string? Tag { get; init; }
    public IReadOnlyList<string> Cmd { get; init; } = [];
    public IReadOnlyDictionary<string, string>? Env { get; init; }
    public string? Cwd { get; init; }
    public string? User { get; init; }
    public TerminalSize? Pty { get; init; }
    public bool StdinOpen { get; init; }
    public DateTimeOffset StartedAt { get; init; }
    public bool Running { get; init; }
    /// <summary>Set once it has exited (the guest remembers the 16 most recent).</summary>
    public ProcessExitStatus? Exit { get; init; }
}

/// <summary>
/// One line of GET .../processes/{pid}/output (NDJSON), and the JSON text frames the attach
/// WebSocket sends. <c>type</c>: <c>start</c> (pid, pty, skipped), <c>stdout</c>/<c>stderr</c>/<c>pty</c>
/// (base64 <c>data</c>), <c>keepalive</c>, <c>exit</c>, <c>error</c> (code, message). The stream ends after exit or error.
/// </summary>
public sealed record ProcessStreamEvent
{
    public required string Type { get; init; }
    public int? Pid { get; init; }
    public bool? Pty { get; init; }
    /// <summary>start: output bytes the guest had already dropped before this stream's first byte.</summary>
    public long? Skipped { get; init; }
    public string? Data { get; init; }
    public int? ExitCode { get; init; }
    public int? Signal { get; init; }
    public bool? TimedOut { get; init; }
    public long? DurationMs { get; init; }
    public string? Code { get; init; }
    public string? Message { get; init; }
}

/// <summary>POST .../processes/{pid}/signal. <c>signal</c>: a number 1..64 or a name (<c>"SIGTERM"</c>, <c>"TERM"</c>); default SIGKILL.</summary>
public sealed record SignalProcessRequest
{
    public JsonElement? Signal { get; init; }
}

/// <summary>POST .../processes/{pid}/resize.</summary>
public sealed record ResizeProcessRequest
{
    public int? Cols { get; init; }
    public int? Rows { get; init; }
}

/// <summary>
/// A JSON text frame a client sends on the attach WebSocket: <c>resize</c> (cols, rows),
/// <c>close-stdin</c>, or <c>signal</c> (signal, as in <see cref="SignalProcessRequest"/>).
/// Binary frames are input.
/// </summary>
public sealed record AttachControlMessage
{
    public string? Type { get; init; }
    public int? Cols { get; init; }
    public int? Rows { get; init; }
    public JsonElement? Signal { get; init; }
}

/// <summary>POST .../files/mkdir: mkdir -p.</summary>
public sealed record MkdirRequest
{
    public string? Path { get; init; }
}

/// <summary><c>created</c> is false when the directory already existed.</summary>
public sealed record MkdirResult(string Path, bool Created);

/// <summary>POST .../files/move: rename(2); parents of the destination are created; a file or empty directory there is replaced.</summary>
public sealed record MoveFileRequest
{
    public string? Source { get; init; }
    public string? Destination { get; init; }
}

/// <summary>
/// One line of GET .../files/watch (NDJSON). <c>type</c>: <c>start</c> (the watch is in place),
/// <c>create</c>, <c>write</c>, <c>remove</c>, <c>rename</c>, <c>chmod</c> (with <c>name</c>, relative
/// to the watched directory), <c>keepalive</c>, <c>end</c> (the directory itself went away), <c>error</c>.
/// </summary>
public sealed record FileWatchEvent
{
    public required string Type { get; init; }
    public string? Name { get; init; }
    public string? Code { get; init; }
    public string? Message { get; init; }
}
