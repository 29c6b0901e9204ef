using System.Text.Json.Serialization;

namespace Bough.E2b.Envd.Process;

// process.Process messages in proto3 JSON (lowerCamel names, bytes as base64, oneofs as the set member).

internal sealed class StartRequest
{
    [JsonPropertyName("process")] public ProcessConfig? Process { get; set; }
    [JsonPropertyName("pty")] public object? Pty { get; set; }
    [JsonPropertyName("tag")] public string? Tag { get; set; }
    [JsonPropertyName("stdin")] public bool? Stdin { get; set; }
}

internal sealed class ProcessConfig
{
    [JsonPropertyName("cmd")] public string? Cmd { get; set; }
    [JsonPropertyName("args")] public List<string>? Args { get; set; }
    [JsonPropertyName("envs")] public Dictionary<string, string>? Envs { get; set; }
    [JsonPropertyName("cwd")] public string? Cwd { get; set; }
}

/// <summary><c>StartResponse</c> / <c>ConnectResponse</c>: <c>{"event": ProcessEvent}</c>.</summary>
internal sealed record ProcessEventMessage([property: JsonPropertyName("event")] ProcessEvent Event);

/// <summary>The <c>event</c> oneof: exactly one member is set.</summary>
internal sealed record ProcessEvent
{
    [JsonPropertyName("start")] public StartEvent? Start { get; init; }
    [JsonPropertyName("data")] public DataEvent? Data { get; init; }
    [JsonPropertyName("end")] public EndEvent? End { get; init; }
    [JsonPropertyName("keepalive")] public KeepAlive? Keepalive { get; init; }
}

internal sealed record StartEvent([property: JsonPropertyName("pid")] uint Pid);

internal sealed record DataEvent
{
    [JsonPropertyName("stdout")] public string? Stdout { get; init; }
    [JsonPropertyName("stderr")] public string? Stderr { get; init; }
}

internal sealed record EndEvent
{
    /// <summary>Left out when 0 (proto3 default).</summary>
    [JsonPropertyName("exitCode")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int ExitCode { get; init; }
    [JsonPropertyName("exited")] public bool Exited { get; init; }
    [JsonPropertyName("status")] public string? Status { get; init; }
    [JsonPropertyName("error")] public string? Error { get; init; }
}

internal sealed record KeepAlive;
