using System.Text.Json;
using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Endpoints;

/// <summary>The guest's process table: background processes and terminals that outlive the request that started them.</summary>
internal static class ProcessEndpoints
{
    /// <summary>How often an idle output stream gets a keepalive line unless the client asks otherwise.</summary>
    public static readonly TimeSpan DefaultKeepalive = TimeSpan.FromSeconds(15);

    public static void MapProcessEndpoints(this RouteGroupBuilder group)
    {
        group.MapPost("/{id}/processes", Start)
            .WithName("StartProcess").WithTags("processes")
            .WithDescription("Starts a process in the background (optionally on a terminal: `pty {cols,rows}`) and answers 201 with it. It runs on when the client goes away; attach to its output with GET .../output or the attach WebSocket.")
            .Accepts<StartProcessRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 413, 500, 501, 502, 503);

        group.MapGet("/{id}/processes", List)
            .WithName("ListProcesses").WithTags("processes")
            .WithDescription("The running processes, oldest first; `?all=true` adds the few exited ones the guest remembers (with their exit status).")
            .ProducesBoughProblems(404, 409, 500, 501, 502, 503);

        group.MapGet("/{id}/processes/{pid:int}", Get)
            .WithName("GetProcess").WithTags("processes")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);

        group.MapGet("/{id}/processes/{pid:int}/output", Output)
            .WithName("ProcessOutput").WithTags("processes")
            .WithDescription($"The process's output as `{ExecEndpoints.NdjsonMediaType}`: a `start` line, the output the guest still buffers (unless `replay=false`), live output (base64 `data`; `stdout`, `stderr`, or `pty` for a terminal), `keepalive` lines while idle (every `keepaliveSeconds`, default 15), and an `exit` (or `error`) line. Disconnecting only detaches; `deadlineSeconds` kills the process if the stream is still attached then.")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);

        group.MapPost("/{id}/processes/{pid:int}/stdin", Stdin)
            .WithName("ProcessStdin").WithTags("processes")
            .WithDescription("Writes the raw request body to the process's stdin (or terminal) and answers once the process took it all. `close=true` closes stdin afterwards (not for a terminal: send 0x04).")
            .WithMetadata(new RequestSizeLimit(FileEndpoints.MaxUploadBytes))
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);

        group.MapPost("/{id}/processes/{pid:int}/signal", Signal)
            .WithName("SignalProcess").WithTags("processes")
            .WithDescription("Sends a signal to the process group: `signal` a number 1..64 or a name (`SIGTERM`, `TERM`); no body or no signal: SIGKILL.")
            .Accepts<SignalProcessRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);

        group.MapPost("/{id}/processes/{pid:int}/resize", Resize)
            .WithName("ResizeProcess").WithTags("processes")
            .WithDescription("Resizes a terminal process's terminal (1..4096 each); the process gets SIGWINCH.")
            .Accepts<ResizeProcessRequest>("application/json")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);

        group.MapGet("/{id}/processes/{pid:int}/attach", ProcessAttachSocket.RunAsync)
            .WithName("AttachProcess").WithTags("processes")
            .WithDescription("WebSocket for interactive use. Down: binary frames are output (stdout or terminal), text frames JSON `ProcessStreamEvent`s (`start`, `stderr`, `exit`, `error`). Up: binary frames are input; text frames JSON `AttachControlMessage`s (`resize`, `close-stdin`, `signal`). `replay=false` skips buffered output. The token may be sent as the subprotocol `bough.token.<token>` next to `bough.v1` (browsers cannot set headers on WebSockets); the server selects `bough.v1`.")
            .ProducesBoughProblems(400, 404, 409, 500, 501, 502, 503);
    }

    private static async Task<Created<GuestProcess>> Start(string id, HttpContext ctx, [FromServices] IGuestProcesses engine)
    {
        var ct = ctx.RequestAborted;
        var r = await JsonBody.ReadAsync<StartProcessRequest>(ctx.Request, ct);
        var cmd = r.Cmd ?? [];
        for (var i = 0; i < cmd.Count; i++)
            if (cmd[i] is null)
                throw new BoughException(ErrorCodes.InvalidRequest, $"wrong type at $.cmd[{i}]: expected a string, got null");
        var start = new ProcessStart(cmd, r.Env, r.Cwd, r.User, r.Tag, r.Stdin ?? false, r.Pty, Seconds(r.TimeoutSeconds, "timeoutSeconds"));
        var process = await engine.StartAsync(id, start, ct);
        return TypedResults.Created($"/v1/sandboxes/{Uri.EscapeDataString(id)}/processes/{process.Pid}", process);
    }

    private static async Task<Ok<IReadOnlyList<GuestProcess>>> List(string id, [FromQuery] bool? all, [FromServices] IGuestProcesses engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.ListAsync(id, all ?? false, ct));

    private static async Task<Ok<GuestProcess>> Get(string id, int pid, [FromServices] IGuestProcesses engine, CancellationToken ct) =>
        TypedResults.Ok(await engine.GetAsync(id, ProcessRef.ByPid(pid), ct));

    private static NdjsonStream<ProcessStreamItem, ProcessStreamEvent> Output(
        string id, int pid, [FromQuery] bool? replay, [FromQuery] double? keepaliveSeconds, [FromQuery] double? deadlineSeconds,
        HttpContext ctx, [FromServices] IGuestProcesses engine, [FromServices] ILoggerFactory loggers)
    {
        var attach = new ProcessAttach(replay ?? true, Seconds(deadlineSeconds, "deadlineSeconds"), Seconds(keepaliveSeconds, "keepaliveSeconds") ?? DefaultKeepalive);
        return new NdjsonStream<ProcessStreamItem, ProcessStreamEvent>(
            engine.AttachAsync(id, ProcessRef.ByPid(pid), attach, ctx.RequestAborted),
            StreamLines.ToLine, i => i.Kind == ProcessStreamKind.Exit, StreamLines.ProcessError,
            StreamLines.ProcessError(ErrorCodes.Internal, "the output ended without an exit status"),
            loggers.CreateLogger(typeof(ProcessEndpoints).FullName!));
    }

    private static async Task<NoContent> Stdin(string id, int pid, [FromQuery] bool? close, Stream body,
        [FromServices] IGuestProcesses engine, CancellationToken ct)
    {
        var process = ProcessRef.ByPid(pid);
        await engine.SendInputAsync(id, process, body, ct);
        if (close == true)
            await engine.CloseStdinAsync(id, process, ct);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> Signal(string id, int pid, HttpContext ctx, [FromServices] IGuestProcesses engine)
    {
        var ct = ctx.RequestAborted;
        var r = await JsonBody.ReadOptionalAsync<SignalProcessRequest>(ctx.Request, ct);
        await engine.SignalAsync(id, ProcessRef.ByPid(pid), ParseSignal(r?.Signal), ct);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> Resize(string id, int pid, HttpContext ctx, [FromServices] IGuestProcesses engine)
    {
        var ct = ctx.RequestAborted;
        var r = await JsonBody.ReadAsync<ResizeProcessRequest>(ctx.Request, ct);
        if (r.Cols is not { } cols || r.Rows is not { } rows)
            throw new BoughException(ErrorCodes.InvalidRequest, "cols and rows are required");
        await engine.ResizeAsync(id, ProcessRef.ByPid(pid), new TerminalSize(cols, rows), ct);
        return TypedResults.NoContent();
    }

    /// <summary>A JSON number (1..64) or string (number or name); absent or null: SIGKILL.</summary>
    internal static int ParseSignal(JsonElement? signal) => signal switch
    {
        null => Signals.Kill,
        { ValueKind: JsonValueKind.Null } => Signals.Kill,
        { ValueKind: JsonValueKind.Number } n when n.TryGetInt32(out var i) => Signals.Validate(i),
        { ValueKind: JsonValueKind.String } s => Signals.Parse(s.GetString()!),
        _ => throw new BoughException(ErrorCodes.InvalidRequest, "signal must be a number (1..64) or a name such as \"SIGTERM\""),
    };

    internal static TimeSpan? Seconds(double? seconds, string field)
    {
        if (seconds is not { } s) return null;
        if (!double.IsFinite(s) || s <= 0 || s >= TimeSpan.MaxValue.TotalSeconds)
            throw new BoughException(ErrorCodes.InvalidRequest, $"{field} must be a positive number of seconds");
        return TimeSpan.FromSeconds(s);
    }
}
