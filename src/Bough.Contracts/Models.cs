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
    public const string Paused = "paused";   // VM process gone, memory/devices/disk kept on disk
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
    int? Pid = null,
    string? SnapshotId = null);

public sealed record CreateSandboxRequest
{
    public string? Image { get; init; }
    public int? Vcpus { get; init; }
    public int? MemoryMiB { get; init; }
    public Dictionary<string, string>? Env { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
    public bool? Internet { get; init; }
    public List<int>? Ports { get; init; }
    /// <summary>Start from this snapshot (id or tag) instead of booting the image.</summary>
    public string? Snapshot { get; init; }
    /// <summary>With <see cref="Snapshot"/>: how many sandboxes to start (1..100); the answer is then a list.</summary>
    public int? Count { get; init; }
}

/// <summary>A frozen copy of a sandbox: memory layer, device state, disk layer. Immutable.</summary>
public sealed record Snapshot
{
    public required string Id { get; init; }
    public string? Tag { get; init; }
    public string? ParentId { get; init; }
    public string? SourceSandboxId { get; init; }
    /// <summary>1 for a snapshot of a freshly booted sandbox, parent's depth + 1 otherwise.</summary>
    public int Depth { get; init; }
    /// <summary>"snapshot", "branch", "pause" or "compacted".</summary>
    public required string Kind { get; init; }
    public required string Image { get; init; }
    public int Vcpus { get; init; }
    public int MemoryMiB { get; init; }
    /// <summary>Bytes of memory pages this snapshot's own layer stores (changed, non-zero, not in the parent).</summary>
    public long MemoryBytes { get; init; }
    /// <summary>Bytes of this snapshot's own disk layer.</summary>
    public long DiskBytes { get; init; }
    /// <summary>How long the source VM was stopped for the capture.</summary>
    public long? PauseMs { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>Filled by GET /v1/snapshots/{id}: oldest first.</summary>
    public IReadOnlyList<string>? Ancestors { get; init; }
    public IReadOnlyList<string>? Children { get; init; }
    /// <summary>Sandboxes started from (or paused into) this snapshot that still exist.</summary>
    public IReadOnlyList<string>? Sandboxes { get; init; }
}

public sealed record CreateSnapshotRequest
{
    public string? Tag { get; init; }
}

public sealed record BranchChild
{
    public Dictionary<string, string>? Env { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
}

public sealed record BranchRequest
{
    public int? Count { get; init; }
    public string? Tag { get; init; }
    public List<BranchChild>? Children { get; init; }
}

public sealed record BranchResult(Snapshot Snapshot, long PauseMs, IReadOnlyList<Sandbox> Children);

/// <summary>A node of GET /v1/tree: snapshots contain their child snapshots and the sandboxes started from them.</summary>
public sealed record TreeNode
{
    /// <summary>"snapshot" or "sandbox".</summary>
    public required string Kind { get; init; }
    public required string Id { get; init; }
    public string? Tag { get; init; }
    public string? State { get; init; }
    public IReadOnlyList<TreeNode> Children { get; init; } = [];
}

public sealed record LineageTree(IReadOnlyList<TreeNode> Roots);

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
    public const string SnapshotNotFound = "snapshot_not_found";
    public const string TagExists = "tag_exists";
    public const string SnapshotInUse = "snapshot_in_use";
    public const string TooManyCaptures = "too_many_captures";
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
