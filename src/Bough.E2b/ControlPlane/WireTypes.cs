using System.Text.Json.Serialization;

namespace Bough.E2b.ControlPlane;

// E2B's control-plane wire types (openapi of e2b 2.51.0), only the fields Bough maps.

/// <summary>POST /v2/sandboxes.</summary>
internal sealed record NewSandbox
{
    [JsonPropertyName("templateID")] public string? TemplateId { get; init; }
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
    [JsonPropertyName("autoPause")] public bool? AutoPause { get; init; }
    [JsonPropertyName("metadata")] public Dictionary<string, string>? Metadata { get; init; }
    [JsonPropertyName("envVars")] public Dictionary<string, string>? EnvVars { get; init; }
    [JsonPropertyName("allow_internet_access")] public bool? AllowInternetAccess { get; init; }
    [JsonPropertyName("network")] public NetworkConfig? Network { get; init; }
}

internal sealed record NetworkConfig
{
    [JsonPropertyName("allowOut")] public List<string>? AllowOut { get; init; }
    [JsonPropertyName("denyOut")] public List<string>? DenyOut { get; init; }
    /// <summary>Only on PUT /sandboxes/{id}/network.</summary>
    [JsonPropertyName("allow_internet_access")] public bool? AllowInternetAccess { get; init; }
}

/// <summary>Bodies of timeout, connect and fork: <c>timeout</c> in seconds (fork also <c>count</c>).</summary>
internal sealed record TimeoutBody
{
    [JsonPropertyName("timeout")] public int? Timeout { get; init; }
    [JsonPropertyName("count")] public int? Count { get; init; }
}

internal sealed record SnapshotBody
{
    [JsonPropertyName("name")] public string? Name { get; init; }
}

/// <summary>The answer to create, connect and each fork.</summary>
internal sealed record E2bSandbox
{
    [JsonPropertyName("sandboxID")] public required string SandboxId { get; init; }
    [JsonPropertyName("templateID")] public required string TemplateId { get; init; }
    [JsonPropertyName("clientID")] public string ClientId { get; init; } = E2bNames.ClientId;
    [JsonPropertyName("envdVersion")] public string EnvdVersion { get; init; } = E2bNames.EnvdVersion;
    [JsonPropertyName("envdAccessToken")] public string? EnvdAccessToken { get; init; }
    [JsonPropertyName("domain")] public string? Domain { get; init; }
}

/// <summary>GET /v2/sandboxes entries; GET /sandboxes/{id} adds the detail fields.</summary>
internal sealed record E2bSandboxDetail
{
    [JsonPropertyName("sandboxID")] public required string SandboxId { get; init; }
    [JsonPropertyName("templateID")] public required string TemplateId { get; init; }
    [JsonPropertyName("clientID")] public string ClientId { get; init; } = E2bNames.ClientId;
    [JsonPropertyName("cpuCount")] public int CpuCount { get; init; }
    [JsonPropertyName("memoryMB")] public int MemoryMb { get; init; }
    [JsonPropertyName("diskSizeMB")] public int DiskSizeMb { get; init; }
    [JsonPropertyName("envdVersion")] public string EnvdVersion { get; init; } = E2bNames.EnvdVersion;
    [JsonPropertyName("metadata")] public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    [JsonPropertyName("startedAt")] public DateTimeOffset StartedAt { get; init; }
    [JsonPropertyName("endAt")] public DateTimeOffset EndAt { get; init; }
    [JsonPropertyName("state")] public required string State { get; init; }
    [JsonPropertyName("domain")] public string? Domain { get; init; }
    [JsonPropertyName("envdAccessToken")] public string? EnvdAccessToken { get; init; }
    [JsonPropertyName("allowInternetAccess")] public bool? AllowInternetAccess { get; init; }
    [JsonPropertyName("lifecycle")] public Lifecycle? Lifecycle { get; init; }
    [JsonPropertyName("network")] public NetworkConfig? Network { get; init; }
}

internal sealed record Lifecycle(
    [property: JsonPropertyName("onTimeout")] string OnTimeout,
    [property: JsonPropertyName("autoResume")] bool AutoResume);

/// <summary>One entry of the fork answer: a sandbox, or the error that kept it from starting.</summary>
internal sealed record ForkEntry(
    [property: JsonPropertyName("sandbox")] E2bSandbox? Sandbox,
    [property: JsonPropertyName("error")] E2bError? Error = null);

internal sealed record E2bSnapshot(
    [property: JsonPropertyName("snapshotID")] string SnapshotId,
    [property: JsonPropertyName("names")] IReadOnlyList<string> Names);

internal sealed record E2bMetric
{
    [JsonPropertyName("timestamp")] public DateTimeOffset Timestamp { get; init; }
    [JsonPropertyName("timestampUnix")] public long TimestampUnix { get; init; }
    [JsonPropertyName("cpuCount")] public int CpuCount { get; init; }
    [JsonPropertyName("cpuUsedPct")] public double CpuUsedPct { get; init; }
    [JsonPropertyName("memUsed")] public long MemUsed { get; init; }
    [JsonPropertyName("memTotal")] public long MemTotal { get; init; }
    [JsonPropertyName("memCache")] public long MemCache { get; init; }
    [JsonPropertyName("diskUsed")] public long DiskUsed { get; init; }
    [JsonPropertyName("diskTotal")] public long DiskTotal { get; init; }
}
