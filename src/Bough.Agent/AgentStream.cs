using System.Threading.Channels;
using Bough.Protocol;

namespace Bough.Agent;

/// <summary>
/// The agent's end of one multiplexed stream (one operation). Holds the flow-control state for both
/// directions and the queue of DATA the host sent; the queue is bounded by the receive window
/// because the session rejects DATA beyond it.
/// </summary>
internal sealed class AgentStream : IDisposable
{
    private readonly Session _session;
    private readonly CancellationTokenSource _cts;
    private readonly Channel<byte[]> _input = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleWriter = true });
    private volatile Action? _wake;

    public AgentStream(Session session, uint id, CancellationToken sessionToken)
    {
        _session = session;
        Id = id;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(sessionToken);
        SendCredit = new CreditGate(ProtocolConstants.InitialWindow, () => _wake?.Invoke());
    }

    public uint Id { get; }
    public CancellationToken Token => _cts.Token;
    public CreditGate SendCredit { get; }
    public ReceiveWindow ReceiveWindow { get; } = new();
    public ChannelReader<byte[]> Input => _input.Reader;
    public AgentLog Log => _session.Log;

    /// <summary>Called (from any thread) whenever input, credit or cancellation arrives; exec's I/O loop uses it to wake its poll.</summary>
    public void SetWake(Action wake) => _wake = wake;

    public void OnData(byte[] data)
    {
        _input.Writer.TryWrite(data);
        _wake?.Invoke();
    }

    public void OnEof()
    {
        _input.Writer.TryComplete();
        _wake?.Invoke();
    }

    public void Cancel()
    {
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
        _wake?.Invoke();
    }

    /// <summary>Sends a REPLY; it counts against the host's window so it waits for credit like DATA.</summary>
    public async Task SendReplyAsync(ReplyMessage reply)
    {
        var payload = ProtocolJson.Encode(reply, ProtocolJson.Default.ReplyMessage, ProtocolConstants.MaxReplyPayload);
        await SendCredit.AcquireExactAsync(payload.Length, Token).ConfigureAwait(false);
        await _session.WriteAsync(FrameType.Reply, 0, Id, payload, Token).ConfigureAwait(false);
    }

    /// <summary>Sends bytes as DATA frames, waiting for credit and splitting into chunks as needed.</summary>
    public async Task SendDataAsync(DataChannel channel, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = await SendCredit.AcquireAsync(Math.Min(data.Length, ProtocolConstants.MaxDataChunk), Token).ConfigureAwait(false);
            await _session.WriteAsync(FrameType.Data, (ushort)channel, Id, data[..n], Token).ConfigureAwait(false);
            data = data[n..];
        }
    }

    /// <summary>Sends a DATA frame for which credit was already taken (exec's I/O loop does its own accounting).</summary>
    public void SendDataBlocking(DataChannel channel, ReadOnlyMemory<byte> data) =>
        _session.WriteAsync(FrameType.Data, (ushort)channel, Id, data, Token).AsTask().GetAwaiter().GetResult();

    /// <summary>Returns consumed input bytes to the host as window credit once enough has accumulated.</summary>
    public async Task ConsumedAsync(int bytes, bool flush = false)
    {
        int grant = ReceiveWindow.Consume(bytes, flush);
        if (grant > 0) await _session.WriteWindowAsync(Id, grant, Token).ConfigureAwait(false);
    }

    public void ConsumedBlocking(int bytes, bool flush = false) => ConsumedAsync(bytes, flush).GetAwaiter().GetResult();

    /// <summary>Final frame; sent even when the stream was cancelled so the host can forget the stream id.</summary>
    public Task SendEndAsync(EndMessage end) =>
        _session.WriteAsync(FrameType.End, 0, Id, ProtocolJson.Encode(end, ProtocolJson.Default.EndMessage), CancellationToken.None).AsTask();

    public void Dispose()
    {
        SendCredit.Close();
        _input.Writer.TryComplete();
        _cts.Dispose();
    }
}
