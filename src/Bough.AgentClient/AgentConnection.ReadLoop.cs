using Bough.Protocol;
using Microsoft.Extensions.Logging;

namespace Bough.AgentClient;

/// <summary>
/// The one read loop: every frame from the guest is validated here before it reaches a stream,
/// and consumed bytes go back to the agent as credit.
/// </summary>
public sealed partial class AgentConnection
{
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
                    Ops.ProcStart or Ops.ProcAttach => !s.Detached && s.Replies >= 1
                        && (s.Pty ? channel == DataChannel.Stdout : channel is DataChannel.Stdout or DataChannel.Stderr),
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
}
