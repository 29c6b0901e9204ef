using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using Bough.Contracts;

namespace Bough.Client;

/// <summary>
/// An open attach WebSocket (<see cref="BoughClient.AttachProcessAsync"/>). Read with
/// <see cref="ReceiveAsync"/> from one task; send input and controls from another. Disposing
/// only detaches: the process runs on.
/// </summary>
public sealed class ProcessAttachment(ClientWebSocket socket) : IAsyncDisposable
{
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly byte[] _buffer = new byte[64 * 1024];

    /// <summary>The next frame: output bytes, or an event (<c>start</c>, <c>stderr</c>, <c>exit</c>, <c>error</c>); null once the socket closed.</summary>
    public async Task<AttachFrame?> ReceiveAsync(CancellationToken ct = default)
    {
        var message = new ArrayBufferWriter<byte>();
        while (true)
        {
            WebSocketReceiveResult r;
            try { r = await socket.ReceiveAsync(_buffer, ct).ConfigureAwait(false); }
            catch (WebSocketException) when (!ct.IsCancellationRequested) { return null; }
            if (r.MessageType == WebSocketMessageType.Close)
            {
                await AnswerCloseAsync().ConfigureAwait(false);
                return null;
            }
            message.Write(_buffer.AsSpan(0, r.Count));
            if (!r.EndOfMessage)
                continue;
            if (r.MessageType == WebSocketMessageType.Binary)
                return new AttachFrame(message.WrittenMemory.ToArray(), null);
            return new AttachFrame(null, JsonSerializer.Deserialize<ProcessStreamEvent>(message.WrittenSpan, ClientJson.Read));
        }
    }

    /// <summary>Input for the process (stdin or terminal).</summary>
    public Task SendInputAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default) => SendAsync(data, WebSocketMessageType.Binary, ct);

    public Task ResizeAsync(int cols, int rows, CancellationToken ct = default) =>
        SendControlAsync(new AttachControlMessage { Type = "resize", Cols = cols, Rows = rows }, ct);

    public Task CloseStdinAsync(CancellationToken ct = default) => SendControlAsync(new AttachControlMessage { Type = "close-stdin" }, ct);

    /// <summary>A signal by number or name (<c>"SIGINT"</c>).</summary>
    public Task SignalAsync(string signal, CancellationToken ct = default) =>
        SendControlAsync(new AttachControlMessage { Type = "signal", Signal = JsonSerializer.SerializeToElement(signal) }, ct);

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            if (socket.State == WebSocketState.Open)
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "detach", timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // Already gone: nothing to detach from.
        }
        socket.Dispose();
        _send.Dispose();
    }

    private async Task AnswerCloseAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The server is gone already.
        }
    }

    private Task SendControlAsync(AttachControlMessage m, CancellationToken ct) =>
        SendAsync(JsonSerializer.SerializeToUtf8Bytes(m, ClientJson.Write), WebSocketMessageType.Text, ct);

    private async Task SendAsync(ReadOnlyMemory<byte> data, WebSocketMessageType type, CancellationToken ct)
    {
        await _send.WaitAsync(ct).ConfigureAwait(false);
        try { await socket.SendAsync(data, type, endOfMessage: true, ct).ConfigureAwait(false); }
        finally { _send.Release(); }
    }
}

/// <summary>One frame from the attach socket: <see cref="Output"/> bytes or an <see cref="Event"/>.</summary>
public sealed record AttachFrame(byte[]? Output, ProcessStreamEvent? Event);
