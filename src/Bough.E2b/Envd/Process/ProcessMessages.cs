using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bough.E2b.Envd.Process;

// process.Process messages in proto3 JSON (lowerCamel names, bytes as base64, oneofs as the set member),
// as e2b 2.51's process.proto declares them.

internal sealed class StartRequest
{
    [JsonPropertyName("process")] public ProcessConfig? Process { get; set; }
    [JsonPropertyName("pty")] public Pty? Pty { get; set; }
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

/// <summary><c>PTY{size:{cols,rows}}</c>.</summary>
internal sealed class Pty
{
    [JsonPropertyName("size")] public PtySize? Size { get; set; }
}

internal sealed class PtySize
{
    [JsonPropertyName("cols")] public uint Cols { get; set; }
    [JsonPropertyName("rows")] public uint Rows { get; set; }
}

/// <summary>The <c>selector</c> oneof: a pid or a tag.</summary>
internal sealed class ProcessSelector
{
    [JsonPropertyName("pid")] public uint? Pid { get; set; }
    [JsonPropertyName("tag")] public string? Tag { get; set; }
}

/// <summary><c>ConnectRequest</c> and <c>CloseStdinRequest</c>: just the selector.</summary>
internal sealed class SelectorRequest
{
    [JsonPropertyName("process")] public ProcessSelector? Process { get; set; }
}

internal sealed class SendInputRequest
{
    [JsonPropertyName("process")] public ProcessSelector? Process { get; set; }
    [JsonPropertyName("input")] public ProcessInput? Input { get; set; }
}

/// <summary>The <c>input</c> oneof: stdin bytes or terminal bytes.</summary>
internal sealed class ProcessInput
{
    [JsonPropertyName("stdin")] public byte[]? Stdin { get; set; }
    [JsonPropertyName("pty")] public byte[]? Pty { get; set; }
}

internal sealed class SendSignalRequest
{
    [JsonPropertyName("process")] public ProcessSelector? Process { get; set; }

    /// <summary>Enum <c>Signal</c>: a name (<c>"SIGNAL_SIGKILL"</c>) or a number (9), both allowed by proto3 JSON.</summary>
    [JsonPropertyName("signal")] public JsonElement Signal { get; set; }
}

internal sealed class UpdateRequest
{
    [JsonPropertyName("process")] public ProcessSelector? Process { get; set; }
    [JsonPropertyName("pty")] public Pty? Pty { get; set; }
}

/// <summary>The empty response of SendInput, SendSignal, CloseStdin and Update.</summary>
internal sealed record EmptyResponse;

internal sealed record ListResponse([property: JsonPropertyName("processes")] IReadOnlyList<ProcessInfo> Processes);

internal sealed record ProcessInfo(
    [property: JsonPropertyName("config")] ProcessInfoConfig Config,
    [property: JsonPropertyName("pid")] uint Pid,
    [property: JsonPropertyName("tag")] string? Tag);

internal sealed record ProcessInfoConfig(
    [property: JsonPropertyName("cmd")] string Cmd,
    [property: JsonPropertyName("args")] IReadOnlyList<string> Args,
    [property: JsonPropertyName("envs")] IReadOnlyDictionary<string, string> Envs,
    [property: JsonPropertyName("cwd")] string? Cwd);

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

/// <summary>The <c>output</c> oneof, base64.</summary>
internal sealed record DataEvent
{
    [JsonPropertyName("stdout")] public string? Stdout { get; init; }
    [JsonPropertyName("stderr")] public string? Stderr { get; init; }
    [JsonPropertyName("pty")] public string? Pty { get; init; }
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
