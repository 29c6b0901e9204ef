using System.Threading.Channels;
using Bough.Protocol;

namespace Bough.AgentClient;

/// <summary>One item delivered to an operation: a DATA chunk, a parsed REPLY or the final END.</summary>
internal readonly record struct StreamItem(FrameType Type, DataChannel Channel, byte[] Data, ReplyMessage? Reply, EndMessage? End);

/// <summary>
/// Host side of one stream. The queue looks unbounded, but the reader rejects DATA/REPLY beyond the
/// window it granted, so it holds at most one window plus the END. An abandoned stream (caller
/// gone) stays registered until its END so late frames are recognised, not treated as violations.
/// </summary>
internal sealed class ClientStream(uint id, string op)
{
    private readonly Channel<StreamItem> _queue = Channel.CreateUnbounded<StreamItem>(new UnboundedChannelOptions { SingleWriter = true });
    private volatile Exception? _failure;

    public uint Id { get; } = id;
    public string Op { get; } = op;
    public ReceiveWindow ReceiveWindow { get; } = new();
    public CreditGate SendCredit { get; } = new(ProtocolConstants.InitialWindow);
    public volatile bool Abandoned;
    public volatile bool Ended;
    public int Replies;
    public long ListedEntries;
    /// <summary>proc.start with detach: END carries a pid instead of an exit.</summary>
    public bool Detached;
    /// <summary>proc.start/proc.attach: the process has a terminal (set by the first REPLY); output comes on channel 1 only.</summary>
    public volatile bool Pty;

    public int QueuedItems => _queue.Reader.Count;

    public void Deliver(StreamItem item) => _queue.Writer.TryWrite(item);

    public void Complete(EndMessage end)
    {
        Ended = true;
        SendCredit.Close();
        _queue.Writer.TryWrite(new StreamItem(FrameType.End, 0, [], null, end));
        _queue.Writer.TryComplete();
    }

    /// <summary>Fails the stream; the first reason wins (the channel's violation, not a later "closed" seen by the opener).</summary>
    public void Fail(Exception failure)
    {
        Interlocked.CompareExchange(ref _failure, failure, null);
        SendCredit.Close();
        _queue.Writer.TryComplete(failure);
    }

    /// <summary>Next item; throws the connection's failure if the channel died first.</summary>
    public async ValueTask<StreamItem> NextAsync(CancellationToken ct)
    {
        // After a channel failure nothing buffered is handed out: every pending operation fails.
        if (_failure != null) throw _failure;
        try
        {
            return await _queue.Reader.ReadAsync(ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw _failure ?? new AgentException(ErrorCodes.AgentUnavailable, "agent channel closed");
        }
    }

    public bool TryNext(out StreamItem item) => _queue.Reader.TryRead(out item);
}
