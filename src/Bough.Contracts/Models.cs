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
    public const string Paused = "paused";   // VM process gone, memory/devices/disk kept on disk
}

/// <summary>How a sandbox's VM first came up (<see cref="Sandbox.Boot"/>).</summary>
public static class SandboxBoots
{
    /// <summary>Its image's kernel booted (the first create of a shape, or <c>coldBoot: true</c>).</summary>
    public const string Cold = "cold";
    /// <summary>Restored from a snapshot: its image's boot snapshot, a branch, a snapshot or a template.</summary>
    public const string Restored = "restored";
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
    string? SnapshotId = null,
    string? Template = null,
    DateTimeOffset? EndAt = null,    // when its lifetime ends (absent: no deadline; a paused sandbox has none)
    string? OnTimeout = null,        // what happens at EndAt: "kill" (deleted) or "pause" (see TimeoutActions)
    NetworkRules? Network = null,    // egress rules beyond Internet (absent: none)
    string? Boot = null);            // how its VM first came up: "cold" or "restored" (see SandboxBoots)

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
    /// <summary>Start by forking this template's snapshot (a fork, not a boot). Excludes Image and Snapshot.</summary>
    public string? Template { get; init; }
    /// <summary>With <see cref="Snapshot"/>: how many sandboxes to start (1..100); the answer is then a list.</summary>
    public int? Count { get; init; }
    /// <summary>Seconds from the moment it runs until its deadline; left out: the daemon's default (none unless configured).</summary>
    public int? TimeoutSeconds { get; init; }
    /// <summary>What the deadline does: "kill" (default) or "pause".</summary>
    public string? OnTimeout { get; init; }
    /// <summary>Egress rules beyond <see cref="Internet"/>.</summary>
    public NetworkRules? Network { get; init; }
    /// <summary>
    /// True: boot the image's kernel even when a boot snapshot of this image and shape exists (and do not
    /// publish one). Left out or false: the create restores from the boot snapshot when there is one.
    /// Only for creates from an image, not with <see cref="Snapshot"/> or <see cref="Template"/>.
    /// </summary>
    public bool? ColdBoot { get; init; }
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
    /// <summary>
    /// "snapshot", "branch", "pause", "template", "compacted" or "boot" (an image booted up to its agent, which
    /// creates of the same image, vCPUs and memory restore from; removed once its image, kernel or agent changed
    /// and no sandbox needs it).
    /// </summary>
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
    /// <summary>
    /// False for a branch snapshot made without a tag or <c>keep</c>: it is removed once no
    /// sandbox, template or child snapshot depends on it.
    /// </summary>
    public bool Keep { get; init; } = true;
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
    /// <summary>A tag keeps the branch snapshot (like <see cref="Keep"/>).</summary>
    public string? Tag { get; init; }
    /// <summary>
    /// Keep the snapshot the branch captures. Without a tag or keep it is collected once no
    /// sandbox, template or child snapshot depends on it.
    /// </summary>
    public bool? Keep { get; init; }
    public List<BranchChild>? Children { get; init; }
    /// <summary>The children's internet access; left out: the source's.</summary>
    public bool? Internet { get; init; }
    /// <summary>The children's egress rules; left out: the source's.</summary>
    public NetworkRules? Network { get; init; }
    /// <summary>The children's lifetime in seconds; left out: the daemon's default (the source's deadline is not inherited).</summary>
    public int? TimeoutSeconds { get; init; }
    /// <summary>"kill" (default) or "pause".</summary>
    public string? OnTimeout { get; init; }
}

public sealed record BranchResult(Snapshot Snapshot, long PauseMs, IReadOnlyList<Sandbox> Children);

/// <summary>A node of GET /v1/tree: snapshots contain their child snapshots and the sandboxes started from them.</summary>
public sealed record TreeNode
{
    /// <summary>"snapshot" or "sandbox".</summary>
    public required string Kind { get; init; }
    public required string Id { get; init; }
    public string? Tag { get; init; }
    /// <summary>For a snapshot node: its <see cref="Snapshot.Kind"/>.</summary>
    public string? SnapshotKind { get; init; }
    public string? State { get; init; }
    public IReadOnlyList<TreeNode> Children { get; init; } = [];
}

public sealed record LineageTree(IReadOnlyList<TreeNode> Roots);

public sealed record ExecRequest
{
    public List<string>? Cmd { get; init; }
    public Dictionary<string, string>? Env { get; init; }
    public string? Cwd { get; init; }
    /// <summary>User to run as (name or uid[:gid]); default: the image's User, else root.</summary>
    public string? User { get; init; }
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
    DateTimeOffset Mtime)
{
    /// <summary>Absolute guest path (stat, move, and listings with a depth).</summary>
    public string? Path { get; init; }
    /// <summary>As <c>ls -l</c> shows it (<c>drwxr-xr-x</c>); owner, group and link target come from newer guest agents.</summary>
    public string? Permissions { get; init; }
    public string? Owner { get; init; }
    public string? Group { get; init; }
    public string? Target { get; init; }
}

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
    /// <summary>Too many buffered execs are running (in the sandbox or daemon-wide); Retry-After says when to try again.</summary>
    public const string TooManyExecs = "too_many_execs";
    /// <summary>The host has no room: committed guest memory or the sandbox count would pass its limit.</summary>
    public const string CapacityExceeded = "capacity_exceeded";
    public const string ImageInUse = "image_in_use";
    public const string ImageExists = "image_exists";
    /// <summary>The registry has no such repository, tag or digest.</summary>
    public const string ImageRefNotFound = "image_ref_not_found";
    /// <summary>The registry refused our credentials (or has none for us).</summary>
    public const string RegistryUnauthorized = "registry_unauthorized";
    /// <summary>The registry could not be reached or answered with something that is not the OCI API.</summary>
    public const string RegistryUnavailable = "registry_unavailable";
    /// <summary>A downloaded blob did not hash to its digest, or a manifest/config was malformed.</summary>
    public const string ImageCorrupt = "image_corrupt";
    /// <summary>A layer tried to write outside the root, or used a type/format we refuse.</summary>
    public const string LayerRejected = "layer_rejected";
    /// <summary>No linux/amd64 image in the index, or a media type we do not know.</summary>
    public const string ImageUnsupported = "image_unsupported";
    public const string ImageBuildFailed = "image_build_failed";
    public const string TemplateNotFound = "template_not_found";
    public const string TemplateExists = "template_exists";
    public const string TemplateInUse = "template_in_use";
    /// <summary>The template's ready command never succeeded within its timeout.</summary>
    public const string TemplateNotReady = "template_not_ready";
    public const string Internal = "internal_error";
    /// <summary>401: no API token, or a wrong one.</summary>
    public const string Unauthorized = "unauthorized";
    /// <summary>415: a JSON endpoint got a body of another Content-Type.</summary>
    public const string UnsupportedMediaType = "unsupported_media_type";
    /// <summary>421: a loopback listener got a request for a Host name that is not loopback (DNS rebinding).</summary>
    public const string HostNotAllowed = "host_not_allowed";
    /// <summary>404: no such process in the sandbox's table (or it exited long enough ago to be forgotten).</summary>
    public const string ProcessNotFound = "process_not_found";
    /// <summary>501: the sandbox's guest agent predates the feature (an old image or snapshot); recreate it from a current image.</summary>
    public const string GuestUnsupported = "guest_unsupported";
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
