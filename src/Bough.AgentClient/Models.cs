namespace Bough.AgentClient;

/// <summary>Failure reported by the agent (its stable error code) or by the channel ("agent_unavailable").</summary>
public sealed class AgentException(string code, string message) : Exception(message)
{
    /// <summary>A stable code such as file_not_found or agent_unavailable; switch on this, not on the message.</summary>
    public string Code { get; } = code;

    /// <summary>
    /// An answer bigger than the caller's cap (a listing of too many entries). Sent by the agent
    /// for its own cap too, so both sides report it alike.
    /// </summary>
    public const string TooLarge = "too_large";
}

/// <summary>
/// Caps on one listing: a hostile guest could otherwise make the host hold any number of entries.
/// <paramref name="MaxBytes"/> counts names (UTF-16) plus <see cref="EntryOverheadBytes"/> per entry.
/// </summary>
public sealed record ListLimits(int MaxEntries, long MaxBytes)
{
    public const int EntryOverheadBytes = 64;

    /// <summary>What <see cref="AgentConnection.ListAsync(string, CancellationToken)"/> allows.</summary>
    public static ListLimits Default { get; } = new(100_000, 16L * 1024 * 1024);
}

/// <summary>What the agent said in its handshake answer.</summary>
public sealed record AgentHello(int ProtocolVersion, string AgentVersion, string? BootId, string? Hostname, int Pid)
{
    /// <summary>Capabilities beyond protocol v1 (<see cref="Bough.Protocol.AgentFeatures"/>); empty for an agent that predates them.</summary>
    public IReadOnlySet<string> Features { get; init; } = new HashSet<string>();

    /// <summary>True when the agent announced <paramref name="feature"/> (an older agent answers its ops with <c>unsupported</c>).</summary>
    public bool Supports(string feature) => Features.Contains(feature);
}

public sealed record AgentHealth(string AgentVersion, int ProtocolVersion, TimeSpan AgentUptime, TimeSpan SystemUptime, string? BootId, string? Hostname);

/// <summary>Guest settings to apply after boot or restore; null members are left unchanged.</summary>
public sealed class GuestConfig
{
    public string? Hostname { get; init; }
    /// <summary>Wall clock to set, in unix milliseconds.</summary>
    public long? UnixTimeMs { get; init; }
    /// <summary>Random bytes (1..4096) mixed into the guest kernel RNG and credited as entropy.</summary>
    public byte[]? Entropy { get; init; }
    /// <summary>Merged into the default environment of later execs.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
    /// <summary>Default working directory (absolute) of later execs that set no <see cref="ExecSpec.Cwd"/> (an image's WorkingDir).</summary>
    public string? Cwd { get; init; }
    /// <summary>
    /// Default user of later execs that set no <see cref="ExecSpec.User"/> (an image's User): <c>name</c>, <c>uid</c>,
    /// <c>name:group</c> or <c>uid:gid</c>. The agent resolves it against the guest's /etc/passwd and /etc/group and
    /// rejects an unknown name (bad_request) without applying anything.
    /// </summary>
    public string? User { get; init; }
}

/// <summary>A command to run in the guest. argv is executed directly (no shell).</summary>
public sealed class ExecSpec
{
    public required IReadOnlyList<string> Argv { get; init; }
    public IReadOnlyDictionary<string, string>? Env { get; init; }
    /// <summary>Absolute working directory; default: the configured Cwd, else /root if it exists, else /.</summary>
    public string? Cwd { get; init; }
    /// <summary>
    /// User to run as (<c>name</c>, <c>uid</c>, <c>name:group</c>, <c>uid:gid</c>); default: the configured User, else root.
    /// HOME comes from /etc/passwd unless Env sets it; supplementary groups from /etc/group.
    /// </summary>
    public string? User { get; init; }
    /// <summary>Streamed to the command's stdin; the caller keeps ownership. Without Stdin/StdinBytes stdin is /dev/null.</summary>
    public Stream? Stdin { get; init; }
    public ReadOnlyMemory<byte>? StdinBytes { get; init; }
    /// <summary>When it elapses the whole process group is killed and the exit reports TimedOut.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>Output of a running exec: any number of Stdout/Stderr chunks, then exactly one Exit.</summary>
public abstract record ExecEvent
{
    private ExecEvent() { }

    public sealed record Stdout(byte[] Data) : ExecEvent;
    public sealed record Stderr(byte[] Data) : ExecEvent;
    /// <summary>ExitCode is 128 + Signal when the command was killed by a signal.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1716:Identifiers should not match keywords",
        Justification = "Only C# consumes this library; 'Exit' is a keyword in Visual Basic alone, and the engine matches on ExecEvent.Exit.")]
    public sealed record Exit(int ExitCode, int? Signal, bool TimedOut, long DurationMs) : ExecEvent;
}

public enum AgentFileType { File, Dir, Symlink, Other }

/// <summary>Metadata of a guest path; symlinks are reported as links (not followed).</summary>
/// <remarks>
/// The init-only members come from agents with the <c>files2</c> feature; older agents leave them null.
/// <see cref="Mode"/> is the permission bits (st_mode &amp; 07777).
/// </remarks>
public sealed record AgentFileEntry(string Name, AgentFileType Type, long Size, int Mode, DateTimeOffset ModifiedAt)
{
    /// <summary>The absolute guest path (stat/move: as asked; list: the listed directory joined with the entry's relative path).</summary>
    public string? Path { get; init; }
    public uint? Uid { get; init; }
    public uint? Gid { get; init; }
    /// <summary>The owner's name in the guest's /etc/passwd, null when the uid has none.</summary>
    public string? Owner { get; init; }
    /// <summary>The group's name in the guest's /etc/group, null when the gid has none.</summary>
    public string? Group { get; init; }
    /// <summary>A symlink's target as stored (not resolved).</summary>
    public string? SymlinkTarget { get; init; }

    /// <summary>As <c>ls -l</c> shows it: <c>drwxr-xr-x</c>, <c>-rwsr-x---</c>, <c>lrwxrwxrwx</c>.</summary>
    public string Permissions
    {
        get
        {
            Span<char> s = stackalloc char[10];
            s[0] = Type switch { AgentFileType.Dir => 'd', AgentFileType.Symlink => 'l', AgentFileType.File => '-', _ => '?' };
            for (int who = 0; who < 3; who++)
            {
                int bits = Mode >> (6 - 3 * who);
                s[1 + 3 * who] = (bits & 4) != 0 ? 'r' : '-';
                s[2 + 3 * who] = (bits & 2) != 0 ? 'w' : '-';
                bool x = (bits & 1) != 0;
                int special = who switch { 0 => 0x800, 1 => 0x400, _ => 0x200 };
                char mark = who == 2 ? 't' : 's';
                s[3 + 3 * who] = (Mode & special) != 0 ? (x ? mark : char.ToUpperInvariant(mark)) : x ? 'x' : '-';
            }
            return new string(s);
        }
    }
}
