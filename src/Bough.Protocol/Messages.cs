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
