using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bough.Contracts;

// The REST API's wire types, shared by the server and the C# client so that the two
// can never disagree on a field name. JSON is camelCase (see BoughJson).

/// <summary>Lifecycle states a sandbox can be in.</summary>
public static class SandboxStates
{
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Stopping = "stopping";
    public const string Stopped = "stopped";  // stopped with the daemon; disk kept until deleted
    public const string Dead = "dead";       // the VM process went away without being asked to
    public const string Failed = "failed";   // creation failed; kept for inspection until deleted
}

public sealed record PortMapping(int GuestPort, int HostPort, string HostIp = "127.0.0.1");

public sealed record Sandbox(
    string Id,
    string State,
    string Image,
    int Vcpus,
    int MemoryMiB,
    DateTimeOffset CreatedAt,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyList<PortMapping> Ports,
    bool Internet,
    string Accel,
    string? StateReason = null,
    int? Pid = null);

public sealed record CreateSandboxRequest
{
    public string? Image { get; init; }
    public int? Vcpus { get; init; }
    public int? MemoryMiB { get; init; }
    public Dictionary<string, string>? Env { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
    public bool? Internet { get; init; }
    public List<int>? Ports { get; init; }
}

public sealed record ExecRequest
{
    public List<string>? Cmd { get; init; }
    public Dictionary<string, string>? Env { get; init; }
    public string? Cwd { get; init; }
    /// <summary>Standard input, base64.</summary>
    public string? Stdin { get; init; }
    public double? TimeoutSeconds { get; init; }
}

public sealed record ExecResult(
    int ExitCode,
    string Stdout,
    string Stderr,
    long DurationMs,
    int? Signal = null,
    bool TimedOut = false);

/// <summary>One line of an <c>application/x-ndjson</c> exec stream.</summary>
public sealed record ExecEvent
{
    /// <summary>"stdout", "stderr", "exit" or "error".</summary>
    public required string Type { get; init; }
    /// <summary>Output bytes, base64 (stdout/stderr).</summary>
    public string? Data { get; init; }
    public int? ExitCode { get; init; }
    public int? Signal { get; init; }
    public bool? TimedOut { get; init; }
    public long? DurationMs { get; init; }
    /// <summary>For "error": the problem code and message.</summary>
    public string? Code { get; init; }
    public string? Message { get; init; }
}

public sealed record FileEntry(
    string Name,
    string Type,      // "file", "dir", "symlink", "other"
    long Size,
    int Mode,         // permission bits, e.g. 420 (0644)
    DateTimeOffset Mtime);

public sealed record VersionInfo(string Version, string Api, string Runtime, string Accel);

public sealed record HealthStatus(string Status);

/// <summary>RFC 9457 problem details with Bough's stable machine-readable <c>code</c>.</summary>
public sealed record Problem
{
    public string Type { get; init; } = "about:blank";
    public string? Title { get; init; }
    public int Status { get; init; }
    public string? Detail { get; init; }
    public string? Code { get; init; }
    public string? Instance { get; init; }
}

/// <summary>Stable error codes used in problem responses.</summary>
public static class ErrorCodes
{
    public const string InvalidRequest = "invalid_request";
    public const string InvalidJson = "invalid_json";
    public const string InvalidPath = "invalid_path";
    public const string NotFound = "not_found";
    public const string SandboxNotFound = "sandbox_not_found";
    public const string ImageNotFound = "image_not_found";
    public const string FileNotFound = "file_not_found";
    public const string IsADirectory = "is_a_directory";
    public const string NotADirectory = "not_a_directory";
    public const string SandboxNotRunning = "sandbox_not_running";
    public const string SandboxBusy = "sandbox_busy";
    public const string Conflict = "conflict";
    public const string CreateFailed = "create_failed";
    public const string AgentUnavailable = "agent_unavailable";
    public const string GuestError = "guest_error";
    public const string PayloadTooLarge = "payload_too_large";
    public const string PermissionDenied = "permission_denied";
    public const string Internal = "internal_error";
}

public static class BoughJson
{
    /// <summary>The serializer settings every Bough component uses on the wire.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    public static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        };
        return o;
    }
}
