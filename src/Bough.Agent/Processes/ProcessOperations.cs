using System.Text.Json;
using Bough.Protocol;

namespace Bough.Agent.Processes;

/// <summary>The proc.* operations (docs/protocol.md, "Process table"): each maps one OPEN to the table.</summary>
internal static class ProcessOperations
{
    /// <summary>A proc.list REPLY is filled up to this many bytes (REPLY payloads are capped at 64 KiB).</summary>
    private const int ListBatchBytes = 48 * 1024;

    /// <summary>proc.start: detached → END {pid}; attached → the output stream from the first byte.</summary>
    public static async Task<EndMessage> StartAsync(OpenRequest request, AgentStream stream, AgentState state)
    {
        var start = request.Process ?? throw new AgentError(ErrorCodes.BadRequest, "proc.start arguments missing");
        if (!start.Detach) ProcessStarter.ValidateAttach(request.Attach);
        var (process, io) = ProcessStarter.Start(start, state);
        var attachment = start.Detach ? null : process.Attach(replay: true, out _);
        io.Start();
        process.StartLifetime(start.TimeoutMs);
        if (attachment == null) return new EndMessage { Pid = process.Pid };
        return await AttachPump.RunAsync(process, attachment, 0, stream, request.Attach).ConfigureAwait(false);
    }

    /// <summary>proc.attach: the buffered output (unless replay is false), then live output, then the exit.</summary>
    public static Task<EndMessage> AttachAsync(OpenRequest request, AgentStream stream, AgentState state)
    {
        ProcessStarter.ValidateAttach(request.Attach);
        var process = state.Processes.Find(request.Target);
        var attachment = process.Attach(request.Attach?.Replay ?? true, out long skipped);
        return AttachPump.RunAsync(process, attachment, skipped, stream, request.Attach);
    }

    public static async Task<EndMessage> ListAsync(OpenRequest request, AgentStream stream, AgentState state)
    {
        var batch = new List<ProcessInfoDto>();
        int bytes = 0;
        foreach (var process in state.Processes.Snapshot(request.IncludeExited == true))
        {
            var info = process.ToInfo();
            int size = Fit(info);
            if (bytes + size > ListBatchBytes && batch.Count > 0)
            {
                await stream.SendReplyAsync(new ReplyMessage { Processes = batch }).ConfigureAwait(false);
                batch = [];
                bytes = 0;
            }
            batch.Add(info);
            bytes += size;
        }
        if (batch.Count > 0) await stream.SendReplyAsync(new ReplyMessage { Processes = batch }).ConfigureAwait(false);
        return new EndMessage();
    }

    /// <summary>proc.input: DATA channel 0 until EOF goes to stdin (or the terminal); END once all of it was written.</summary>
    public static async Task<EndMessage> InputAsync(OpenRequest request, AgentStream stream, AgentState state)
    {
        var process = state.Processes.Find(request.Target);
        await foreach (var chunk in stream.Input.ReadAllAsync(stream.Token).ConfigureAwait(false))
        {
            await process.WriteInputAsync(chunk, stream.Token).ConfigureAwait(false);
            await stream.ConsumedAsync(chunk.Length, flush: stream.Input.Count == 0).ConfigureAwait(false);
        }
        return new EndMessage();
    }

    public static EndMessage CloseStdin(OpenRequest request, AgentState state)
    {
        state.Processes.Find(request.Target).CloseStdin();
        return new EndMessage();
    }

    /// <summary>proc.signal: to the process group unless group is false; not_found once the process has exited.</summary>
    public static EndMessage Signal(OpenRequest request, AgentState state)
    {
        if (request.Signal is not (>= 1 and <= 64))
            throw new AgentError(ErrorCodes.BadRequest, "signal must be 1..64");
        var process = state.Processes.Find(request.Target);
        if (!process.Signal(request.Signal.Value, request.Group ?? true))
            throw new AgentError(ErrorCodes.NotFound, $"process {process.Pid} has exited");
        return new EndMessage();
    }

    public static EndMessage Resize(OpenRequest request, AgentState state)
    {
        ProcessStarter.ValidateSize(request.Size);
        state.Processes.Find(request.Target).Resize(request.Size!.Cols, request.Size.Rows);
        return new EndMessage();
    }

    /// <summary>
    /// The entry's JSON size, after cutting it down to a quarter of a REPLY if it was bigger (the
    /// environment goes first, then arguments, then long ones are shortened); marks it truncated.
    /// </summary>
    private static int Fit(ProcessInfoDto info)
    {
        const int max = ListBatchBytes / 4;
        int size = Size(info);
        if (size <= max) return size;
        info.Truncated = true;
        info.Env = null;
        info.Argv = [.. info.Argv.Select(a => a.Length > 256 ? a[..256] : a)];
        while ((size = Size(info)) > max && info.Argv.Count > 1) info.Argv.RemoveRange(info.Argv.Count / 2, info.Argv.Count - info.Argv.Count / 2);
        if (info.Cwd.Length > 1024) info.Cwd = info.Cwd[..1024];
        if (info.User is { Length: > 256 } u) info.User = u[..256];
        return Size(info);
    }

    private static int Size(ProcessInfoDto info) => JsonSerializer.SerializeToUtf8Bytes(info, ProtocolJson.Default.ProcessInfoDto).Length;
}
