using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Bough.Contracts;

namespace Bough.Engine.Events;

/// <summary>
/// Fans each published event out to every subscriber's bounded queue. Publishing never waits: a full queue drops
/// its oldest event and the subscriber is told to re-list (<see cref="EventTypes.Resync"/>), because the engine
/// publishes from under its lifecycle locks and one stalled client must not stall creates for everyone.
/// Sequence numbers are taken and fanned out under one lock, so every subscriber sees them in increasing order.
/// </summary>
internal sealed class EventBus(TimeProvider time) : IEngineEvents
{
    /// <summary>Events a subscriber may have pending before the oldest are dropped (a branch ×20 makes about 60).</summary>
    public const int QueueCapacity = 1024;

    private readonly Lock _gate = new();
    private readonly List<Subscriber> _subscribers = [];
    private long _sequence;

    /// <summary>Publishes an event; returns it with its sequence number and time.</summary>
    public BoughEvent Publish(BoughEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        lock (_gate)
        {
            var stamped = e with { Sequence = ++_sequence, Timestamp = time.GetUtcNow() };
            foreach (var s in _subscribers) s.Offer(stamped);
            return stamped;
        }
    }

    public async IAsyncEnumerable<BoughEvent> SubscribeAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var subscriber = new Subscriber();
        long current;
        lock (_gate)
        {
            _subscribers.Add(subscriber);
            current = _sequence;
        }
        try
        {
            yield return new BoughEvent { Type = EventTypes.Ready, Sequence = current, Timestamp = time.GetUtcNow() };
            while (true)
            {
                BoughEvent next;
                try
                {
                    next = await subscriber.Reader.ReadAsync(ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    yield break;
                }
                if (subscriber.TakeDropped() is { } lastDropped)
                    yield return new BoughEvent { Type = EventTypes.Resync, Sequence = lastDropped, Timestamp = time.GetUtcNow() };
                yield return next;
            }
        }
        finally
        {
            lock (_gate) _subscribers.Remove(subscriber);
        }
    }

    /// <summary>One subscriber's queue, and the last sequence number it lost to a full queue.</summary>
    private sealed class Subscriber
    {
        private readonly Channel<BoughEvent> _queue;
        private long _lastDropped;

        public Subscriber() => _queue = Channel.CreateBounded<BoughEvent>(
            new BoundedChannelOptions(QueueCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            dropped => Interlocked.Exchange(ref _lastDropped, dropped.Sequence));

        public ChannelReader<BoughEvent> Reader => _queue.Reader;

        /// <summary>Never waits: with <see cref="BoundedChannelFullMode.DropOldest"/> a write to a full queue drops instead.</summary>
        public void Offer(BoughEvent e) => _queue.Writer.TryWrite(e);

        /// <summary>The last dropped sequence number since the previous call, if any event was dropped.</summary>
        public long? TakeDropped() => Interlocked.Exchange(ref _lastDropped, 0) is var n and > 0 ? n : null;
    }
}
