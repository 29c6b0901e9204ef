using System.Net.WebSockets;
using System.Text.Json;
using Bough.Contracts;
using Bough.Engine;
using Bough.Server.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;

namespace Bough.Server.Endpoints;

/// <summary>
/// The interactive attach: one WebSocket carries a process's output down and its input and
/// control messages (resize, close-stdin, signal) up. Closing the socket only detaches.
/// </summary>
internal static class ProcessAttachSocket
{
    /// <summary>The subprotocol the server selects; a client offering <c>bough.token.&lt;token&gt;</c> must offer it too.</summary>
    public const string Subprotocol = "bough.v1";
    private const int MaxMessageBytes = 1024 * 1024;

    public static async Task RunAsync(string id, int pid, [FromQuery] bool? replay, HttpContext ctx,
        [FromServices] IGuestProcesses engine, [FromServices] ILoggerFactory loggers)
    {
        var ct = ctx.RequestAborted;
        if (!ctx.WebSockets.IsWebSocketRequest)
            throw new BoughException(ErrorCodes.InvalidRequest, "this endpoint is a WebSocket: send a WebSocket upgrade request (GET .../output streams NDJSON over plain HTTP)");
        var process = ProcessRef.ByPid(pid);
        using var attached = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await using var events = engine.AttachAsync(id, process, new ProcessAttach(replay ?? true), attached.Token).GetAsyncEnumerator(attached.Token);
        // The first event (or the error) comes before the upgrade, so a wrong id or pid is a plain problem answer.
        if (!await events.MoveNextAsync())
            throw new BoughException(ErrorCodes.Internal, "the output ended before it started");

        var offered = ctx.WebSockets.WebSocketRequestedProtocols;
        using var socket = await ctx.WebSockets.AcceptWebSocketAsync(offered.Contains(Subprotocol) ? Subprotocol : null);
        var log = loggers.CreateLogger(typeof(ProcessAttachSocket).FullName!);
        using var sendLock = new SemaphoreSlim(1, 1);
        var input = Task.Run(() => PumpInputAsync(socket, engine, id, process, sendLock, log, attached.Token), CancellationToken.None);
        // The client closing (or vanishing) ends the output side too, even while the process is quiet: that detaches.
        _ = input.ContinueWith(_ =>
        {
            try { attached.Cancel(); }
            catch (ObjectDisposedException) { } // the session already ended
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        try
        {
            do
            {
                var item = events.Current;
                if (item.Kind is ProcessStreamKind.Stdout or ProcessStreamKind.Pty)
                    await SendAsync(socket, sendLock, item.Data, WebSocketMessageType.Binary, attached.Token);
                else if (item.Kind != ProcessStreamKind.Keepalive)
                    await SendJsonAsync(socket, sendLock, StreamLines.ToLine(item), attached.Token);
                if (item.Kind == ProcessStreamKind.Exit)
                {
                    // CloseOutput, not Close: the input pump is the one reading, and it sees the client's answer.
                    await TryCloseAsync(socket, WebSocketCloseStatus.NormalClosure, "exited");
                    break;
                }
            }
            while (await events.MoveNextAsync());
        }
        catch (BoughException ex)
        {
            await TrySendAsync(socket, sendLock, StreamLines.ProcessError(ex.Code, ex.Message), log);
            await TryCloseAsync(socket, WebSocketCloseStatus.InternalServerError, ex.Code);
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
            // The client closed or vanished: that only detaches.
        }
        finally
        {
            // We sent our close: give the input pump a moment to read the client's answer, so the
            // socket ends cleanly (cancelling a pending receive aborts it).
            if (socket.State == WebSocketState.CloseSent)
                await Task.WhenAny(input, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None));
            await attached.CancelAsync();
            await input.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Binary messages are input; text messages are control. A failed control is reported, not fatal.</summary>
    private static async Task PumpInputAsync(WebSocket socket, IGuestProcesses engine, string id, ProcessRef process, SemaphoreSlim sendLock,
        ILogger log, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (!ct.IsCancellationRequested)
        {
            var r = await socket.ReceiveAsync(buffer, ct);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                await TryCloseAsync(socket, WebSocketCloseStatus.NormalClosure, "detached");
                return;
            }
            message.Write(buffer, 0, r.Count);
            if (message.Length > MaxMessageBytes)
            {
                await TryCloseAsync(socket, WebSocketCloseStatus.MessageTooBig, $"messages are at most {MaxMessageBytes} bytes");
                return;
            }
            if (!r.EndOfMessage)
                continue;
            try
            {
                message.Position = 0;
                if (r.MessageType == WebSocketMessageType.Binary)
                    await engine.SendInputAsync(id, process, message, ct);
                else
                    await ControlAsync(engine, id, process, message, ct);
            }
            catch (BoughException ex)
            {
                await TrySendAsync(socket, sendLock, StreamLines.ProcessError(ex.Code, ex.Message), log);
            }
            message.SetLength(0);
        }
    }

    private static async Task ControlAsync(IGuestProcesses engine, string id, ProcessRef process, MemoryStream json, CancellationToken ct)
    {
        AttachControlMessage? m;
        try { m = JsonSerializer.Deserialize<AttachControlMessage>(json.GetBuffer().AsSpan(0, (int)json.Length), JsonBody.Options); }
        catch (JsonException ex) { throw new BoughException(ErrorCodes.InvalidJson, $"control message: {ex.Message}", ex); }
        switch (m?.Type)
        {
            case "resize":
                await engine.ResizeAsync(id, process, new TerminalSize(m.Cols ?? 0, m.Rows ?? 0), ct);
                break;
            case "close-stdin":
                await engine.CloseStdinAsync(id, process, ct);
                break;
            case "signal":
                await engine.SignalAsync(id, process, ProcessEndpoints.ParseSignal(m.Signal), ct);
                break;
            default:
                throw new BoughException(ErrorCodes.InvalidRequest, $"unknown control message type '{m?.Type}' (resize, close-stdin, signal)");
        }
    }

    private static async Task SendAsync(WebSocket socket, SemaphoreSlim sendLock, ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken ct)
    {
        await sendLock.WaitAsync(ct);
        try { await socket.SendAsync(data, type, endOfMessage: true, ct); }
        finally { sendLock.Release(); }
    }

    private static Task SendJsonAsync(WebSocket socket, SemaphoreSlim sendLock, ProcessStreamEvent e, CancellationToken ct) =>
        SendAsync(socket, sendLock, JsonSerializer.SerializeToUtf8Bytes(e, BoughJson.Options), WebSocketMessageType.Text, ct);

    private static async Task TrySendAsync(WebSocket socket, SemaphoreSlim sendLock, ProcessStreamEvent e, ILogger log)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await SendJsonAsync(socket, sendLock, e, timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            log.LogDebug("Could not deliver an error frame: the client is gone");
        }
    }

    private static async Task TryCloseAsync(WebSocket socket, WebSocketCloseStatus status, string reason)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await socket.CloseOutputAsync(status, reason.Length > 120 ? reason[..120] : reason, timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Gone already.
        }
    }
}
