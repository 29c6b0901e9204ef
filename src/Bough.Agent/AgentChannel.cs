using Bough.Protocol;

namespace Bough.Agent;

/// <summary>
/// Runs the protocol over one byte stream (the virtio port between reopenings, or one accepted
/// unix-socket connection in test mode). Until a HELLO arrives it skips junk (stale bytes of an
/// earlier host session); after that frames are read strictly. Any violation drops the session
/// after a best-effort GOAWAY, and the caller reopens the channel.
/// </summary>
internal sealed class AgentChannel(Stream stream, AgentState state)
{
    private readonly AgentLog _log = state.Log;

    /// <summary>Returns when the stream ends, fails, or the host broke the protocol.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = new FrameReader(stream);
        var writer = new FrameWriter(stream, lifetime.Token);
        Session? session = null;
        try
        {
            while (true)
            {
                Frame? frame = session == null
                    ? await reader.ScanAsync(h => h.Type == FrameType.Hello, ProtocolConstants.MaxHelloPayload, long.MaxValue, lifetime.Token).ConfigureAwait(false)
                    : await reader.ReadFrameAsync(lifetime.Token).ConfigureAwait(false);
                if (frame is not { } f)
                {
                    _log.Info(session == null ? "channel closed before a session started" : "host closed the channel");
                    return;
                }
                if (f.Type == FrameType.Hello)
                {
                    session = await OnHelloAsync(f, session, writer, lifetime.Token).ConfigureAwait(false);
                    continue;
                }
                session!.Handle(f);
            }
        }
        catch (ProtocolException e)
        {
            _log.Error($"protocol error from host, dropping session: {e.Message}");
            session?.Dispose();
            await SendGoAwayAsync(writer, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            _log.Info($"channel ended: {e.Message}");
        }
        finally
        {
            session?.Dispose();
            lifetime.Cancel();
        }
    }

    private async Task<Session?> OnHelloAsync(Frame frame, Session? current, FrameWriter writer, CancellationToken ct)
    {
        HelloRequest hello;
        try
        {
            hello = ProtocolJson.Decode(frame.Payload, ProtocolJson.Default.HelloRequest);
        }
        catch (ProtocolException e) when (current == null)
        {
            // Still resynchronising: a HELLO-looking frame with a bad payload is just more junk.
            _log.Warn($"ignoring malformed HELLO: {e.Message}");
            return null;
        }
        if (hello.Nonce.Length is 0 or > 128) throw new ProtocolException("HELLO nonce must be 1..128 characters");

        Session session;
        if (current != null && current.Nonce == hello.Nonce)
        {
            // The host resends HELLO until it sees an answer; a repeat must not reset its session.
            session = current;
        }
        else
        {
            if (current != null) _log.Info("new HELLO: dropping the previous session and its operations");
            current?.Dispose();
            session = new Session(writer, state, hello.Nonce);
            _log.Info($"session started (host protocol {hello.ProtocolVersion}, client {hello.Client})");
        }
        var ack = new HelloResponse
        {
            ProtocolVersion = ProtocolConstants.Version,
            Nonce = hello.Nonce,
            AgentVersion = AgentState.Version,
            BootId = AgentState.BootId(),
            Hostname = AgentState.Hostname(),
            Pid = Environment.ProcessId,
            Features = [.. AgentFeatures.All],
        };
        await session.WriteAsync(FrameType.HelloAck, 0, 0, ProtocolJson.Encode(ack, ProtocolJson.Default.HelloResponse), ct).ConfigureAwait(false);
        return session;
    }

    private async Task SendGoAwayAsync(FrameWriter writer, string message)
    {
        try
        {
            var payload = ProtocolJson.Encode(new GoAwayMessage { Code = ErrorCodes.BadRequest, Message = message }, ProtocolJson.Default.GoAwayMessage);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await writer.WriteAsync(FrameType.GoAway, 0, 0, payload, timeout.Token).AsTask().WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _log.Debug($"GOAWAY not sent: {e.Message}");
        }
    }
}
