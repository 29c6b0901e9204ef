namespace Bough.Protocol;

/// <summary>
/// Fixed numbers of the host&lt;-&gt;guest wire protocol (see docs/protocol.md). Both sides compile
/// against the same constants so that limits are enforced identically on each end.
/// </summary>
public static class ProtocolConstants
{
    /// <summary>"BOUG": lets a reader resynchronise on a byte stream that carries junk from an earlier session.</summary>
    public static ReadOnlySpan<byte> Magic => "BOUG"u8;

    /// <summary>Framing version carried in every header; a mismatch is a protocol violation.</summary>
    public const byte Version = 1;

    /// <summary>Size of the fixed frame header in bytes.</summary>
    public const int HeaderSize = 16;

    /// <summary>Largest payload of any frame. Bigger lengths are violations, so no reader ever allocates more.</summary>
    public const int MaxPayload = 1024 * 1024;

    /// <summary>Largest DATA chunk; keeps one busy stream from hogging the shared channel.</summary>
    public const int MaxDataChunk = 64 * 1024;

    /// <summary>Largest REPLY payload; REPLY frames count against the flow-control window, so they must fit in it.</summary>
    public const int MaxReplyPayload = 64 * 1024;

    /// <summary>Credit each side implicitly has for a stream when it is opened, per direction.</summary>
    public const int InitialWindow = 256 * 1024;

    /// <summary>A receiver grants credit back once it has consumed at least this many bytes (or drained its queue).</summary>
    public const int WindowGrantThreshold = 64 * 1024;

    /// <summary>Upper bound of credit a sender may ever hold; more means the peer is broken or hostile.</summary>
    public const long MaxCredit = 16L * 1024 * 1024;

    /// <summary>Largest HELLO / HELLO_ACK payload accepted while scanning for the handshake.</summary>
    public const int MaxHelloPayload = 16 * 1024;

    /// <summary>Longest absolute path accepted (Linux PATH_MAX).</summary>
    public const int MaxPathLength = 4096;
}

/// <summary>Frame types. The numeric values are on the wire and must never change.</summary>
public enum FrameType : byte
{
    /// <summary>host-&gt;agent, stream 0, JSON <see cref="HelloRequest"/>: start (or restart) a session.</summary>
    Hello = 1,
    /// <summary>agent-&gt;host, stream 0, JSON <see cref="HelloResponse"/>.</summary>
    HelloAck = 2,
    /// <summary>host-&gt;agent, new stream id, JSON <see cref="OpenRequest"/>: starts one operation.</summary>
    Open = 3,
    /// <summary>agent-&gt;host, JSON <see cref="ReplyMessage"/>: intermediate result (read size, exec pid, list batch). Counts against the window.</summary>
    Reply = 4,
    /// <summary>both directions, binary chunk; flags carry the <see cref="DataChannel"/>. Counts against the window.</summary>
    Data = 5,
    /// <summary>host-&gt;agent: no more DATA will follow on this stream (stdin / file content finished).</summary>
    Eof = 6,
    /// <summary>both directions, 4-byte little-endian credit increment.</summary>
    Window = 7,
    /// <summary>host-&gt;agent: abandon the operation (kills an exec's process group).</summary>
    Cancel = 8,
    /// <summary>agent-&gt;host, JSON <see cref="EndMessage"/>: final frame of a stream.</summary>
    End = 9,
    /// <summary>agent-&gt;host, stream 0, JSON <see cref="GoAwayMessage"/>: the agent drops the session because of a protocol error.</summary>
    GoAway = 10,
}

/// <summary>Which byte channel a DATA frame belongs to (low two bits of the flags).</summary>
public enum DataChannel : ushort
{
    /// <summary>exec stdin, or file content (write: host-&gt;agent, read: agent-&gt;host).</summary>
    Content = 0,
    Stdout = 1,
    Stderr = 2,
}

/// <summary>Operation names carried in <see cref="OpenRequest.Op"/>.</summary>
public static class Ops
{
    public const string Health = "health";
    public const string Configure = "configure";
    public const string Exec = "exec";
    public const string Write = "write";
    public const string Read = "read";
    public const string List = "list";
    public const string Stat = "stat";
    public const string Mkdir = "mkdir";
    public const string Remove = "remove";
    /// <summary>rename(2) a path; parents of the destination are created.</summary>
    public const string Move = "move";
    /// <summary>inotify on a directory, streamed until the host cancels.</summary>
    public const string Watch = "watch";

    // The process table: processes that outlive the stream (and the session) that started them.
    public const string ProcStart = "proc.start";
    public const string ProcAttach = "proc.attach";
    public const string ProcList = "proc.list";
    public const string ProcInput = "proc.input";
    public const string ProcCloseStdin = "proc.close-stdin";
    public const string ProcSignal = "proc.signal";
    public const string ProcResize = "proc.resize";
}

/// <summary>
/// What an agent can do beyond the v1 operations, announced in HELLO_ACK. The framing version
/// stays 1 (every addition is a new op or an optional field); an older agent baked into an older
/// image answers new ops with <c>unsupported</c>, and this list lets the host know before asking.
/// </summary>
public static class AgentFeatures
{
    /// <summary>proc.* operations: the process table with buffered output, attach, stdin, signals.</summary>
    public const string Processes = "processes";
    /// <summary>proc.start with a pty, proc.resize.</summary>
    public const string Pty = "pty";
    /// <summary>The watch op (inotify).</summary>
    public const string Watch = "watch";
    /// <summary>move, list depth, mkdir's created flag, owner/group/symlink target in entries.</summary>
    public const string Files2 = "files2";

    public static IReadOnlyList<string> All { get; } = [Processes, Pty, Watch, Files2];
}

/// <summary>Stable error codes; clients switch on these, so they never change meaning.</summary>
public static class ErrorCodes
{
    public const string FileNotFound = "file_not_found";
    public const string NotADirectory = "not_a_directory";
    public const string IsADirectory = "is_a_directory";
    public const string InvalidPath = "invalid_path";
    public const string PermissionDenied = "permission_denied";
    public const string AlreadyExists = "already_exists";
    public const string IoError = "io_error";
    public const string BadRequest = "bad_request";
    public const string Unsupported = "unsupported";
    /// <summary>No such process in the agent's process table (or it has exited, for input).</summary>
    public const string NotFound = "not_found";
    /// <summary>An answer or a resource over a cap (a listing, the process table, watched directories).</summary>
    public const string TooLarge = "too_large";
    /// <summary>Host side only: the channel is down, never came up, or the guest broke the protocol.</summary>
    public const string AgentUnavailable = "agent_unavailable";
}

/// <summary>Raised by readers when the peer broke the framing rules. The session must be dropped.</summary>
public sealed class ProtocolException(string message) : Exception(message);
