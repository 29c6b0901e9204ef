using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Bough.Protocol;
using Microsoft.Extensions.Logging;

namespace Bough.AgentClient;

/// <summary>
/// Host end of the agent channel. Everything the guest sends is untrusted: one read loop validates
/// every frame, and any violation closes the channel and fails every pending operation with
/// <c>agent_unavailable</c>. Memory per stream is bounded by the flow-control window, and no caller
/// waits on the guest without honouring its cancellation token.
/// </summary>
public sealed partial class AgentConnection : IAsyncDisposable
{
    /// <summary>Bytes of junk tolerated before the handshake answer (stale output of an earlier session).</summary>
    public const long MaxHandshakeJunk = 4 * 1024 * 1024;
    /// <summary>Cap on entries of one listing, so a hostile guest cannot make a listing grow without bound.</summary>
    public const long MaxListEntries = 1_000_000;
    private static readonly TimeSpan HelloInterval = TimeSpan.FromMilliseconds(500);

    private readonly Stream _stream;
    private readonly ILogger _logger;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly CancellationTokenSource _lifetime;
    private readonly string _nonce;
    private readonly ConcurrentDictionary<uint, ClientStream> _streams = new();
    private readonly SemaphoreSlim _openLock = new(1, 1);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private uint _lastOpened;
    private int _closed;
    private Task _readLoop = Task.CompletedTask;

    private AgentConnection(Stream stream, ILogger logger, FrameReader reader, FrameWriter writer, CancellationTokenSource lifetime, string nonce, AgentHello hello)
    {
        _stream = stream;
        _logger = logger;
        _reader = reader;
        _writer = writer;
        _lifetime = lifetime;
        _nonce = nonce;
        Hello = hello;
    }

    public AgentHello Hello { get; }

    /// <summary>Completes when the channel closes; faulted (with an <see cref="AgentException"/>) on a protocol violation.</summary>
    public Task Completion => _completion.Task;

    public bool IsConnected => Volatile.Read(ref _closed) == 0;

    /// <summary>Bytes received from the guest and not yet consumed, over all streams (for diagnostics and tests).</summary>
    internal long BufferedBytes => _streams.Values.Sum(s => s.ReceiveWindow.Buffered);

    /// <summary>
    /// Connects to QEMU's unix socket, retrying until it exists and accepts and the agent has answered
    /// the handshake, or <paramref name="timeout"/> passes (then throws agent_unavailable).
    /// </summary>
    public static async Task<AgentConnection> ConnectAsync(string unixSocketPath, ILogger logger, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "timed out";
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new AgentException(ErrorCodes.AgentUnavailable, $"agent at {unixSocketPath} unavailable after {timeout.TotalSeconds:0.#} s: {last}");
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath), ct).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e.Message;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(100, Math.Max(1, remaining.TotalMilliseconds))), ct).ConfigureAwait(false);
                continue;
            }
            var stream = new NetworkStream(socket, ownsSocket: true);
            try
            {
                return await ConnectAsync(stream, logger, remaining, ct).ConfigureAwait(false);
            }
            catch (AgentException e) when (e.Message.Contains("closed during handshake") && DateTime.UtcNow < deadline)
            {
                // QEMU accepted but the chardev went away (VM restarting); try again.
                last = e.Message;
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs the handshake on an already connected stream (which the connection then owns): sends
    /// HELLO with a fresh nonce every 500 ms until the matching HELLO_ACK arrives, skipping up to
    /// <see cref="MaxHandshakeJunk"/> bytes of anything else.
    /// </summary>
    public static async Task<AgentConnection> ConnectAsync(Stream stream, ILogger logger, TimeSpan timeout, CancellationToken ct)
    {
        var lifetime = new CancellationTokenSource();
        var reader = new FrameReader(stream);
        var writer = new FrameWriter(stream, lifetime.Token);
        string nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        var hello = ProtocolJson.Encode(new HelloRequest { ProtocolVersion = ProtocolConstants.Version, Nonce = nonce, Client = "bough-agentclient" },
            ProtocolJson.Default.HelloRequest);
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(ct, lifetime.Token);
        handshake.CancelAfter(timeout);
        using var stopResend = CancellationTokenSource.CreateLinkedTokenSource(handshake.Token);
        var resend = ResendHelloAsync(writer, hello, stopResend.Token);
        try
        {
            while (true)
            {
                var frame = await reader.ScanAsync(h => h.Type == FrameType.HelloAck, ProtocolConstants.MaxHelloPayload, MaxHandshakeJunk, handshake.Token).ConfigureAwait(false)
                    ?? throw new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed during handshake");
                HelloResponse? ack = null;
                try { ack = ProtocolJson.Decode(frame.Payload, ProtocolJson.Default.HelloResponse); }
                catch (ProtocolException) { }
                if (ack == null || ack.Nonce != nonce)
                {
                    reader.CountDiscarded(ProtocolConstants.HeaderSize + frame.Payload.Length);
                    continue;
                }
                if (ack.ProtocolVersion != ProtocolConstants.Version)
                    throw new AgentException(ErrorCodes.AgentUnavailable, $"agent speaks protocol {ack.ProtocolVersion}, expected {ProtocolConstants.Version}");
                stopResend.Cancel();
                await resend.ConfigureAwait(false);
                var info = new AgentHello(ack.ProtocolVersion, Truncate(ack.AgentVersion, 64), Truncate(ack.BootId, 64), Truncate(ack.Hostname, 256), ack.Pid);
                var connection = new AgentConnection(stream, logger, reader, writer, lifetime, nonce, info);
                connection._readLoop = Task.Run(connection.ReadLoopAsync, CancellationToken.None);
                logger.LogDebug("agent {Version} connected (boot {BootId})", info.AgentVersion, info.BootId);
                return connection;
            }
        }
        catch (Exception e)
        {
            stopResend.Cancel();
            lifetime.Cancel();
            try { await resend.ConfigureAwait(false); } catch { /* observed */ }
            await stream.DisposeAsync().ConfigureAwait(false);
            lifetime.Dispose();
            if (e is AgentException) throw;
            if (e is OperationCanceledException && ct.IsCancellationRequested) throw;
            string why = e switch
            {
                OperationCanceledException => $"no handshake answer within {timeout.TotalSeconds:0.#} s",
                ProtocolException p => $"protocol error: {p.Message}",
                _ => e.Message,
            };
            throw new AgentException(ErrorCodes.AgentUnavailable, $"agent handshake failed: {why}");
        }
    }

    private static async Task ResendHelloAsync(FrameWriter writer, byte[] hello, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await writer.WriteAsync(FrameType.Hello, 0, 0, hello, ct).ConfigureAwait(false);
                await Task.Delay(HelloInterval, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception) { /* the reader side reports the failure */ }
    }

    private static string Truncate(string? s, int max) => s == null ? "" : s.Length <= max ? s : s[..max];

    // ---------------------------------------------------------------- read loop

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var frame = await _reader.ReadFrameAsync(_lifetime.Token).ConfigureAwait(false);
                if (frame is not { } f)
                {
                    Close(new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed"), violation: false);
                    return;
                }
                Dispatch(f);
            }
        }
        catch (ProtocolException e)
        {
            Close(new AgentException(ErrorCodes.AgentUnavailable, $"agent protocol error: {e.Message}"), violation: true);
        }
        catch (Exception e)
        {
            Close(new AgentException(ErrorCodes.AgentUnavailable, $"agent channel failed: {e.Message}"), violation: false);
        }
    }

    /// <summary>Validates one frame from the guest and routes it. Throws <see cref="ProtocolException"/> on anything unexpected.</summary>
    private void Dispatch(Frame f)
    {
        switch (f.Type)
        {
            case FrameType.HelloAck:
                // Answers to our resent HELLOs; anything else is not ours.
                if (ProtocolJson.Decode(f.Payload, ProtocolJson.Default.HelloResponse).Nonce != _nonce)
                    throw new ProtocolException("HELLO_ACK with a foreign nonce");
                return;
            case FrameType.GoAway:
                string message = "";
                try { message = Truncate(ProtocolJson.Decode(f.Payload, ProtocolJson.Default.GoAwayMessage).Message, 1000); } catch (ProtocolException) { }
                Close(new AgentException(ErrorCodes.AgentUnavailable, $"agent dropped the session: {message}"), violation: false);
                return;
            case FrameType.Reply or FrameType.Data or FrameType.End or FrameType.Window:
                break;
            default:
                throw new ProtocolException($"unexpected {f.Type} frame from agent");
        }

        uint id = f.StreamId;
        if (id > Volatile.Read(ref _lastOpened)) throw new ProtocolException($"{f.Type} for stream {id} that was never opened");
        if (!_streams.TryGetValue(id, out var s)) throw new ProtocolException($"{f.Type} for stream {id} after its END");

        switch (f.Type)
        {
            case FrameType.Window:
                if (!s.SendCredit.Add(f.WindowIncrement) && !s.Ended)
                    throw new ProtocolException($"stream {id}: invalid WINDOW increment {f.WindowIncrement}");
                return;
            case FrameType.Data:
                if (!s.ReceiveWindow.TryReceive(f.Payload.Length)) throw new ProtocolException($"stream {id}: DATA beyond the window");
                var channel = (DataChannel)f.Flags;
                bool allowed = s.Op switch
                {
                    Ops.Exec => channel is DataChannel.Stdout or DataChannel.Stderr,
                    Ops.Read => channel == DataChannel.Content && s.Replies == 1,
                    _ => false,
                };
                if (!allowed) throw new ProtocolException($"stream {id}: DATA channel {channel} not valid for {s.Op}");
                if (s.Abandoned) GrantDiscarded(s, f.Payload.Length);
                else s.Deliver(new StreamItem(FrameType.Data, channel, f.Payload, null, null));
                return;
            case FrameType.Reply:
                if (!s.ReceiveWindow.TryReceive(f.Payload.Length)) throw new ProtocolException($"stream {id}: REPLY beyond the window");
                var reply = ProtocolJson.Decode(f.Payload, ProtocolJson.Default.ReplyMessage);
                s.Replies++;
                Validation.Reply(s, reply);
                if (s.Abandoned) GrantDiscarded(s, f.Payload.Length);
                else s.Deliver(new StreamItem(FrameType.Reply, 0, f.Payload, reply, null));
                return;
            case FrameType.End:
                var end = ProtocolJson.Decode(f.Payload, ProtocolJson.Default.EndMessage);
                Validation.End(s, end);
                _streams.TryRemove(id, out _);
                s.Complete(end);
                return;
        }
    }

    private void GrantDiscarded(ClientStream s, int bytes) => Consumed(s, bytes);

    /// <summary>Returns consumed bytes to the agent as credit (batched by <see cref="ReceiveWindow"/>).</summary>
    internal void Consumed(ClientStream s, int bytes)
    {
        if (s.Ended) return;
        int grant = s.ReceiveWindow.Consume(bytes, flush: s.QueuedItems == 0);
        if (grant > 0) Observe(_writer.WriteWindowAsync(s.Id, grant, _lifetime.Token));
    }

    private void Observe(ValueTask<bool> write)
    {
        if (write.IsCompletedSuccessfully) return;
        _ = ObserveAsync(write);
        async Task ObserveAsync(ValueTask<bool> w)
        {
            try { await w.ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
            catch (Exception e) { _logger.LogDebug(e, "agent channel write failed"); }
        }
    }

    /// <summary>Closes the channel once: logs, fails every pending operation, completes <see cref="Completion"/>.</summary>
    private void Close(AgentException reason, bool violation)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        if (violation) _logger.LogError("closing agent channel: {Reason}", reason.Message);
        else _logger.LogDebug("agent channel closed: {Reason}", reason.Message);
        try { _lifetime.Cancel(); } catch (ObjectDisposedException) { }
        try { _stream.Dispose(); } catch { /* already broken */ }
        foreach (var s in _streams.Values) s.Fail(reason);
        _streams.Clear();
        if (violation) _completion.TrySetException(reason);
        else _completion.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        Close(new AgentException(ErrorCodes.AgentUnavailable, "agent connection disposed"), violation: false);
        try { await _readLoop.ConfigureAwait(false); } catch { /* reported through Completion */ }
        _lifetime.Dispose();
    }

    // ---------------------------------------------------------------- stream plumbing

    private void ThrowIfClosed()
    {
        if (!IsConnected)
        {
            var reason = _completion.Task.Exception?.InnerException as AgentException;
            throw reason ?? new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed");
        }
    }

    /// <summary>
    /// Allocates the next stream id and sends OPEN under one lock, so ids reach the agent in
    /// increasing order (the agent rejects reused or decreasing ids).
    /// </summary>
    private async Task<ClientStream> OpenAsync(OpenRequest request, CancellationToken ct)
    {
        ThrowIfClosed();
        var payload = ProtocolJson.Encode(request, ProtocolJson.Default.OpenRequest);
        await _openLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            uint id = _lastOpened + 1;
            var s = new ClientStream(id, request.Op);
            _streams[id] = s;
            Volatile.Write(ref _lastOpened, id);
            try
            {
                await _writer.WriteAsync(FrameType.Open, 0, id, payload, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested && IsConnected)
            {
                // Never sent (the lock wait was cancelled): forget it. The id stays burnt, which is fine.
                _streams.TryRemove(id, out _);
                throw;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ThrowIfClosed();
                throw new AgentException(ErrorCodes.AgentUnavailable, $"agent channel write failed: {e.Message}");
            }
            if (!IsConnected) s.Fail(new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed"));
            return s;
        }
        finally
        {
            _openLock.Release();
        }
    }

    /// <summary>The caller no longer wants the stream: tell the agent (an exec's process group is killed) and discard what still arrives.</summary>
    internal void Abandon(ClientStream s)
    {
        if (s.Ended || s.Abandoned) return;
        s.Abandoned = true;
        s.SendCredit.Close();
        while (s.TryNext(out var item))
            if (item.Type is FrameType.Data or FrameType.Reply) Consumed(s, item.Data.Length);
        if (IsConnected) Observe(_writer.WriteAsync(FrameType.Cancel, 0, s.Id, ReadOnlyMemory<byte>.Empty, _lifetime.Token));
    }

    /// <summary>Streams <paramref name="source"/> as DATA under the agent's credit, then EOF.</summary>
    private async Task PumpAsync(ClientStream s, Stream source, CancellationToken ct)
    {
        var buffer = new byte[ProtocolConstants.MaxDataChunk];
        while (true)
        {
            int n = await source.ReadAsync(buffer, ct).ConfigureAwait(false);
            if (n == 0) break;
            for (int offset = 0; offset < n;)
            {
                int credit = await s.SendCredit.AcquireAsync(n - offset, ct).ConfigureAwait(false);
                await _writer.WriteAsync(FrameType.Data, (ushort)DataChannel.Content, s.Id, buffer.AsMemory(offset, credit), ct).ConfigureAwait(false);
                offset += credit;
            }
        }
        await _writer.WriteAsync(FrameType.Eof, 0, s.Id, ReadOnlyMemory<byte>.Empty, ct).ConfigureAwait(false);
    }

    private static EndMessage ThrowIfError(EndMessage end)
    {
        if (end.Error is { } e) throw new AgentException(e.Code, e.Message);
        return end;
    }

    /// <summary>Runs an operation whose only answer is END.</summary>
    private async Task<EndMessage> RunAsync(OpenRequest request, CancellationToken ct)
    {
        var s = await OpenAsync(request, ct).ConfigureAwait(false);
        try
        {
            var item = await s.NextAsync(ct).ConfigureAwait(false);
            return ThrowIfError(item.End!);
        }
        finally
        {
            Abandon(s);
        }
    }
}
