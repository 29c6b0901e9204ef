using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>
/// A process for the agent's process table. Unlike <see cref="ExecSpec"/>, the process belongs to
/// the guest, not to the call: it keeps running when the stream that started it ends, and anyone
/// can attach to it later, by pid or by <see cref="Tag"/>.
/// </summary>
public sealed class ProcessSpec
{
    /// <summary>Executed directly (no shell); see <see cref="Shell"/> for a command line.</summary>
    public required IReadOnlyList<string> Argv { get; init; }
    /// <summary>Added to the guest's configured default environment.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
    /// <summary>Absolute working directory; default as <see cref="ExecSpec.Cwd"/>.</summary>
    public string? Cwd { get; init; }
    /// <summary>User to run as; same forms and default as <see cref="ExecSpec.User"/>.</summary>
    public string? User { get; init; }
    /// <summary>A client-chosen name (1..256 characters), unique among running processes; selects the process like its pid.</summary>
    public string? Tag { get; init; }
    /// <summary>True: stdin is a pipe fed by <see cref="AgentConnection.SendProcessInputAsync(ProcessSelector, ReadOnlyMemory{byte}, CancellationToken)"/>
    /// until closed. False: /dev/null. A terminal process always takes input.</summary>
    public bool Stdin { get; init; }
    /// <summary>Run on a new pseudo-terminal of this size (all output then arrives as <see cref="ProcessOutputKind.Pty"/>).</summary>
    public PtySize? Pty { get; init; }
    /// <summary>Lifetime limit: when it elapses the process group is killed, whoever is attached; the exit reports TimedOut.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>A command line run by <c>/bin/sh -c</c> (or another shell, e.g. <c>/bin/bash -l -c</c> as E2B does).</summary>
    public static ProcessSpec Shell(string command, string shell = "/bin/sh", params string[] shellArgs) =>
        new() { Argv = [shell, .. (shellArgs.Length == 0 ? ["-c"] : shellArgs), command] };
}

/// <summary>A terminal size in character cells (1..4096 each).</summary>
public readonly record struct PtySize(int Cols, int Rows);

/// <summary>Names a process of the table: by pid or by tag.</summary>
public sealed record ProcessSelector
{
    private ProcessSelector(int? pid, string? tag)
    {
        Pid = pid;
        Tag = tag;
    }

    public int? Pid { get; }
    public string? Tag { get; }

    public static ProcessSelector ByPid(int pid) => pid > 0 ? new(pid, null) : throw new ArgumentOutOfRangeException(nameof(pid));

    public static ProcessSelector ByTag(string tag) =>
        !string.IsNullOrEmpty(tag) && tag.Length <= ProcessLimits.MaxTagLength ? new(null, tag) : throw new ArgumentException("tag must be 1..256 characters", nameof(tag));

    public override string ToString() => Pid is { } p ? $"pid {p}" : $"tag '{Tag}'";

    internal ProcessSelectorDto ToDto() => new() { Pid = Pid, Tag = Tag };
}

/// <summary>How an attached output stream behaves.</summary>
public sealed class AttachOptions
{
    /// <summary>Start with the output the agent still buffers (default). False: only output from now on (what E2B's Connect does).</summary>
    public bool Replay { get; init; } = true;
    /// <summary>If the stream is still attached when this elapses, the agent kills the process group (E2B's stream timeout).</summary>
    public TimeSpan? Deadline { get; init; }
    /// <summary>The agent sends a <see cref="ProcessEvent.Keepalive"/> after this long without output (100 ms .. 1 h).</summary>
    public TimeSpan? KeepaliveInterval { get; init; }
}

/// <summary>Which output a chunk came from; a terminal process has only <see cref="Pty"/>.</summary>
public enum ProcessOutputKind { Stdout, Stderr, Pty }

/// <summary>
/// An attached stream: exactly one <see cref="Started"/>, then any number of <see cref="Output"/>
/// and <see cref="Keepalive"/>, then one <see cref="Exited"/>.
/// </summary>
public abstract record ProcessEvent
{
    private ProcessEvent() { }

    /// <summary><paramref name="SkippedBytes"/>: output the agent had already dropped from its buffer before this stream's first byte.</summary>
    public sealed record Started(int Pid, bool Pty, long SkippedBytes) : ProcessEvent;
    public sealed record Output(ProcessOutputKind Kind, byte[] Data) : ProcessEvent;
    /// <summary>Nothing happened for the requested interval; the process and the channel are alive.</summary>
    public sealed record Keepalive : ProcessEvent;
    /// <summary>ExitCode is 128 + Signal when the process was killed by a signal; TimedOut when a lifetime or deadline killed it.</summary>
    public sealed record Exited(int ExitCode, int? Signal, bool TimedOut, long DurationMs) : ProcessEvent;
}

/// <summary>A process of the table as listed. <see cref="Env"/> is what its start added, not the merged environment.</summary>
public sealed record ProcessInfo(
    int Pid,
    string? Tag,
    IReadOnlyList<string> Argv,
    IReadOnlyDictionary<string, string> Env,
    string Cwd,
    string? User,
    PtySize? Pty,
    bool StdinOpen,
    DateTimeOffset StartedAt,
    ProcessEvent.Exited? Exit,
    bool Truncated);

/// <summary>What to watch.</summary>
public sealed class WatchOptions
{
    /// <summary>Also every subdirectory, present and future (symlinks are not followed).</summary>
    public bool Recursive { get; init; }
    /// <summary>The agent sends a <see cref="WatchEvent.Keepalive"/> after this long without events (100 ms .. 1 h).</summary>
    public TimeSpan? KeepaliveInterval { get; init; }
}

public enum WatchEventKind { Create, Write, Remove, Rename, Chmod }

/// <summary>A watch: one <see cref="Started"/> once the watches are in place, then changes and keepalives.</summary>
public abstract record WatchEvent
{
    private WatchEvent() { }

    public sealed record Started : WatchEvent;
    /// <summary><paramref name="Name"/> is relative to the watched directory (<c>sub/file.txt</c>).</summary>
    public sealed record Change(WatchEventKind Kind, string Name) : WatchEvent;
    public sealed record Keepalive : WatchEvent;
}
