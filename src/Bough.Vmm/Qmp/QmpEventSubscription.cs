using System.Threading.Channels;

namespace Bough.Vmm;

/// <summary>A private event stream from <see cref="QmpClient.SubscribeEvents"/>; disposing stops delivery.</summary>
public sealed class QmpEventSubscription : IDisposable
{
    private readonly Action _unsubscribe;
    private int _disposed;

    internal QmpEventSubscription(ChannelReader<QmpEvent> reader, Action unsubscribe)
    {
        Reader = reader;
        _unsubscribe = unsubscribe;
    }

    public ChannelReader<QmpEvent> Reader { get; }

    /// <summary>Waits for the next event named <paramref name="name"/>; throws if the connection ends first.</summary>
    public async Task<QmpEvent> WaitForAsync(string name, CancellationToken ct)
    {
        await foreach (var ev in Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            if (ev.Name == name) return ev;
        }
        throw new QmpDisconnectedException($"QMP connection closed before event {name}.");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _unsubscribe();
    }
}
