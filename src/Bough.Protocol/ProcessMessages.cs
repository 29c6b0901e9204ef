namespace Bough.Protocol;

// Payload pieces of the process table (proc.*) and watch operations. Like the rest of the
// protocol: flat classes, optional members, serialized by the source-generated ProtocolJson
// (they are reached through OpenRequest, ReplyMessage and EndMessage, so need no entry of their own).

/// <summary>proc.start: a process that belongs to the agent's process table, not to the stream.</summary>
public sealed class ProcessStartRequest
{
    /// <summary>Executed directly (no shell), resolved like exec's argv.</summary>
    public List<string> Argv { get; set; } = [];
    /// <summary>Added to the configured default environment (as exec).</summary>
    public Dictionary<string, string>? Env { get; set; }
    public string? Cwd { get; set; }
    /// <summary>Same forms and defaults as <see cref="ExecRequest.User"/>.</summary>
    public string? User { get; set; }
    /// <summary>Optional client name for the process, unique in the table; selects it like a pid.</summary>
    public string? Tag { get; set; }
    /// <summary>True: stdin is a pipe fed by proc.input until proc.close-stdin. False: /dev/null. Ignored with a pty.</summary>
    public bool Stdin { get; set; }
    /// <summary>Run on a new pseudo-terminal of this size (stdin, stdout and stderr are its slave side).</summary>
    public PtySizeDto? Pty { get; set; }
    /// <summary>Lifetime limit: the process group is SIGKILLed when it elapses, attached or not.</summary>
    public long? TimeoutMs { get; set; }
    /// <summary>True: END {pid} right after the spawn. False: this stream is attached from the first byte.</summary>
    public bool Detach { get; set; }
}

/// <summary>A terminal size in character cells.</summary>
public sealed class PtySizeDto
{
    public int Cols { get; set; }
    public int Rows { get; set; }
}

/// <summary>Selects a process of the table by pid or by tag (exactly one of them).</summary>
public sealed class ProcessSelectorDto
{
    public int? Pid { get; set; }
    public string? Tag { get; set; }
}

/// <summary>How an attached output stream behaves (proc.start without detach, proc.attach).</summary>
public sealed class AttachRequest
{
    /// <summary>proc.attach: start with the output still buffered (default true); false streams only new output.</summary>
    public bool? Replay { get; set; }
    /// <summary>Kill the process group (SIGKILL) if this stream is still attached when this elapses.</summary>
    public long? DeadlineMs { get; set; }
    /// <summary>Send REPLY {keepalive} after this long without anything sent on the stream.</summary>
    public long? KeepaliveMs { get; set; }
}

/// <summary>One process of the table, as proc.list reports it.</summary>
public sealed class ProcessInfoDto
{
    public int Pid { get; set; }
    public string? Tag { get; set; }
    public List<string> Argv { get; set; } = [];
    /// <summary>The environment the request added (not the merged one).</summary>
    public Dictionary<string, string>? Env { get; set; }
    /// <summary>The working directory it was started in.</summary>
    public string Cwd { get; set; } = "";
    /// <summary>The user spec it runs as; absent for the built-in default (root).</summary>
    public string? User { get; set; }
    public PtySizeDto? Pty { get; set; }
    /// <summary>Whether proc.input can still feed it.</summary>
    public bool StdinOpen { get; set; }
    public long StartedAtMs { get; set; }
    /// <summary>Set once the process has exited (only with includeExited).</summary>
    public ExitDto? Exit { get; set; }
    /// <summary>Argv or Env were cut so the entry fits a REPLY.</summary>
    public bool? Truncated { get; set; }
}

/// <summary>watch: what to watch.</summary>
public sealed class WatchRequest
{
    /// <summary>Also watch every subdirectory, present and future (symlinks are not followed).</summary>
    public bool Recursive { get; set; }
    /// <summary>Send REPLY {keepalive} after this long without events.</summary>
    public long? KeepaliveMs { get; set; }
}

/// <summary>One file system change under a watched directory.</summary>
public sealed class WatchEventDto
{
    /// <summary>Path relative to the watched directory (<c>sub/file.txt</c>).</summary>
    public string Name { get; set; } = "";
    /// <summary>create | write | remove | rename | chmod.</summary>
    public string Type { get; set; } = "";
}

/// <summary>The event type names of <see cref="WatchEventDto.Type"/>.</summary>
public static class WatchEventTypes
{
    public const string Create = "create";
    public const string Write = "write";
    public const string Remove = "remove";
    public const string Rename = "rename";
    public const string Chmod = "chmod";
}

/// <summary>Bounds both ends check the same way (the agent rejects, the host validates before sending).</summary>
public static class ProcessLimits
{
    public const int MaxTagLength = 256;
    /// <summary>Terminal columns and rows are 1..this (struct winsize holds 16 bits; nothing real is bigger).</summary>
    public const int MaxPtyDimension = 4096;
    /// <summary>Deadlines and lifetimes: 1 ms .. 7 days, as exec's timeout.</summary>
    public const long MaxTimeoutMs = 7L * 24 * 3600 * 1000;
    /// <summary>Keepalive intervals: 100 ms .. 1 hour.</summary>
    public const long MinKeepaliveMs = 100, MaxKeepaliveMs = 3600 * 1000;
    /// <summary>Deepest list depth accepted.</summary>
    public const int MaxListDepth = 64;
}
