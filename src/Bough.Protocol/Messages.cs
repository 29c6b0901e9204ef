using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bough.Protocol;

// Control payloads. Deliberately flat classes with optional members: one shape per frame type keeps
// the source-generated serializer small and the validation on the host simple.

/// <summary>HELLO payload.</summary>
public sealed class HelloRequest
{
    public int ProtocolVersion { get; set; }
    /// <summary>Random per connection attempt; the agent echoes it so the host can tell its answer from stale bytes.</summary>
    public string Nonce { get; set; } = "";
    public string? Client { get; set; }
}

/// <summary>HELLO_ACK payload.</summary>
public sealed class HelloResponse
{
    public int ProtocolVersion { get; set; }
    public string Nonce { get; set; } = "";
    public string AgentVersion { get; set; } = "";
    public string? BootId { get; set; }
    public string? Hostname { get; set; }
    public int Pid { get; set; }
    /// <summary>Optional capabilities beyond v1 (<see cref="AgentFeatures"/>); absent from agents that predate them.</summary>
    public List<string>? Features { get; set; }
}

/// <summary>OPEN payload: the operation and its arguments.</summary>
public sealed class OpenRequest
{
    public string Op { get; set; } = "";
    public string? Path { get; set; }
    /// <summary>write: permission bits of the new file (default 0644, or the mode of the file it replaces).</summary>
    public int? Mode { get; set; }
    /// <summary>remove: delete directories with their contents.</summary>
    public bool? Recursive { get; set; }
    public ExecRequest? Exec { get; set; }
    public ConfigureRequest? Configure { get; set; }
    /// <summary>move: the new path (absolute).</summary>
    public string? Destination { get; set; }
    /// <summary>list: levels below <see cref="Path"/> to list (1 = direct children, the default).</summary>
    public int? Depth { get; set; }
    /// <summary>watch: the options.</summary>
    public WatchRequest? Watch { get; set; }
    /// <summary>proc.start: the process to start.</summary>
    public ProcessStartRequest? Process { get; set; }
    /// <summary>proc.attach, proc.input, proc.close-stdin, proc.signal, proc.resize: which process.</summary>
    public ProcessSelectorDto? Target { get; set; }
    /// <summary>proc.start (unless detached) and proc.attach: how the output stream behaves.</summary>
    public AttachRequest? Attach { get; set; }
    /// <summary>proc.signal: the signal number (1..64).</summary>
    public int? Signal { get; set; }
    /// <summary>proc.signal: false signals only the process, not its process group (default true).</summary>
    public bool? Group { get; set; }
    /// <summary>proc.resize: the new terminal size.</summary>
    public PtySizeDto? Size { get; set; }
    /// <summary>proc.list: include the few most recent exited processes the agent still remembers.</summary>
    public bool? IncludeExited { get; set; }
}

public sealed class ExecRequest
{
    public List<string> Argv { get; set; } = [];
    public Dictionary<string, string>? Env { get; set; }
    public string? Cwd { get; set; }
    public long? TimeoutMs { get; set; }
    /// <summary>True: stdin is a pipe fed by DATA channel 0 until EOF. False: stdin is /dev/null.</summary>
    public bool Stdin { get; set; }
    /// <summary>
    /// Run as this user instead of the configured default: <c>name</c>, <c>uid</c>, <c>name:group</c> or
    /// <c>uid:gid</c>, resolved in the guest against /etc/passwd and /etc/group. Optional, like every field added
    /// after v1: the agent ships inside the image built with the host, so both ends always know it.
    /// </summary>
    public string? User { get; set; }
}

public sealed class ConfigureRequest
{
    public string? Hostname { get; set; }
    public long? UnixTimeMs { get; set; }
    public byte[]? Entropy { get; set; }
    /// <summary>Merged into the default environment of later execs.</summary>
    public Dictionary<string, string>? Env { get; set; }
    /// <summary>Default working directory of later execs that name none (absolute).</summary>
    public string? Cwd { get; set; }
    /// <summary>Default user of later execs that name none (same forms as <see cref="ExecRequest.User"/>); validated when set.</summary>
    public string? User { get; set; }
}

/// <summary>REPLY payload (intermediate, op specific).</summary>
public sealed class ReplyMessage
{
    /// <summary>read: file size at open time.</summary>
    public long? Size { get; set; }
    public int? Mode { get; set; }
    public long? MtimeMs { get; set; }
    /// <summary>exec: pid (= process group id) of the started command.</summary>
    public int? Pid { get; set; }
    /// <summary>list: a batch of entries.</summary>
    public List<FileEntryDto>? Entries { get; set; }
    /// <summary>proc.start/proc.attach (with <see cref="Pid"/>): the process has a terminal, all output is DATA channel 1.</summary>
    public bool? Pty { get; set; }
    /// <summary>proc.start/proc.attach (with <see cref="Pid"/>): output bytes evicted from the buffer before this stream's first byte.</summary>
    public long? Skipped { get; set; }
    /// <summary>proc.start/proc.attach/watch: nothing happened for the requested keepalive interval; the stream is alive.</summary>
    public bool? Keepalive { get; set; }
    /// <summary>proc.list: a batch of processes.</summary>
    public List<ProcessInfoDto>? Processes { get; set; }
    /// <summary>watch: the watches are in place (first REPLY); events follow.</summary>
    public bool? Watching { get; set; }
    /// <summary>watch: a batch of events.</summary>
    public List<WatchEventDto>? Events { get; set; }
}

/// <summary>END payload: either Error or the op's result.</summary>
public sealed class EndMessage
{
    public ErrorDto? Error { get; set; }
    public HealthDto? Health { get; set; }
    public FileEntryDto? Entry { get; set; }
    public ExitDto? Exit { get; set; }
    /// <summary>write: bytes written.</summary>
    public long? Size { get; set; }
    /// <summary>proc.start with detach: the started process (= its process group).</summary>
    public int? Pid { get; set; }
    /// <summary>mkdir: true when the directory was created, false when it already existed.</summary>
    public bool? Created { get; set; }
}

public sealed class ErrorDto
{
    public string Code { get; set; } = "";
    public string Message { get; set; } = "";
}

public sealed class HealthDto
{
    public string AgentVersion { get; set; } = "";
    public int ProtocolVersion { get; set; }
    public long AgentUptimeMs { get; set; }
    public long SystemUptimeMs { get; set; }
    public string? BootId { get; set; }
    public string? Hostname { get; set; }
}

public sealed class FileEntryDto
{
    public string Name { get; set; } = "";
    /// <summary>file | dir | symlink | other.</summary>
    public string Type { get; set; } = "";
    public long Size { get; set; }
    /// <summary>Permission bits (st_mode &amp; 07777).</summary>
    public int Mode { get; set; }
    public long MtimeMs { get; set; }
    /// <summary>list with depth &gt; 1: the path relative to the listed directory (<c>a/b.txt</c>); absent means <see cref="Name"/>.</summary>
    public string? Path { get; set; }
    public uint? Uid { get; set; }
    public uint? Gid { get; set; }
    /// <summary>User name of <see cref="Uid"/> in the guest's /etc/passwd, when it has one.</summary>
    public string? Owner { get; set; }
    /// <summary>Group name of <see cref="Gid"/> in the guest's /etc/group, when it has one.</summary>
    public string? Group { get; set; }
    /// <summary>symlink: the link's target as stored (not resolved).</summary>
    public string? Target { get; set; }
}

public sealed class ExitDto
{
    /// <summary>Exit status, or 128 + signal when killed by a signal.</summary>
    public int ExitCode { get; set; }
    public int? Signal { get; set; }
    public bool TimedOut { get; set; }
    public long DurationMs { get; set; }
}

public sealed class GoAwayMessage
{
    public string Code { get; set; } = "";
    public string Message { get; set; } = "";
}

/// <summary>
/// Source-generated serializer metadata. The agent is trimmed and must never fall back to
/// reflection-based serialization, so every payload type is listed here.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    MaxDepth = 16)]
[JsonSerializable(typeof(HelloRequest))]
[JsonSerializable(typeof(HelloResponse))]
[JsonSerializable(typeof(OpenRequest))]
[JsonSerializable(typeof(ReplyMessage))]
[JsonSerializable(typeof(EndMessage))]
[JsonSerializable(typeof(GoAwayMessage))]
public sealed partial class ProtocolJson : JsonSerializerContext
{
    /// <summary>Serializes a control payload; throws if it would exceed <paramref name="limit"/>.</summary>
    public static byte[] Encode<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, int limit = ProtocolConstants.MaxPayload)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, info);
        if (bytes.Length > limit) throw new InvalidOperationException($"control payload of {bytes.Length} bytes exceeds {limit}");
        return bytes;
    }

    /// <summary>Parses a control payload; any malformed input becomes a <see cref="ProtocolException"/>.</summary>
    public static T Decode<T>(ReadOnlySpan<byte> payload, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(payload, info) ?? throw new ProtocolException($"null {typeof(T).Name}");
        }
        catch (JsonException e)
        {
            throw new ProtocolException($"invalid {typeof(T).Name} JSON: {e.Message}");
        }
    }
}

/// <summary>Path rules shared by both ends.</summary>
public static class ProtocolPaths
{
    /// <summary>True for an absolute path without NUL bytes and within PATH_MAX.</summary>
    public static bool IsValidAbsolute(string? path) =>
        !string.IsNullOrEmpty(path) && path[0] == '/' && path.Length <= ProtocolConstants.MaxPathLength && !path.Contains('\0');
}
